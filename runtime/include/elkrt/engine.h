// One interface over every inference engine: N named input and output tensors
// with fixed shapes, bound once to buffers the engine owns, and a run() that
// reads the inputs and writes the outputs in place.
#pragma once

#include "elkrt/tensor.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace elkrt
{

// Shapes to give dynamic dimensions, by tensor name (from the model description).
using ShapeOverrides = std::map<std::string, std::vector<int64_t>>;

class Engine
{
public:
    virtual ~Engine() = default;

    // Loads the model, fixes every shape (overrides first; a dynamic dimension left
    // over is an error naming the tensor), allocates all tensors and runs one
    // priming inference (engines allocate on their first run). Not real-time safe.
    virtual bool load (const std::string& modelPath, const ShapeOverrides& shapes, std::string& error) = 0;

    virtual std::size_t inputCount() const noexcept = 0;
    virtual std::size_t outputCount() const noexcept = 0;
    virtual TensorBuffer& input (std::size_t index) noexcept = 0;
    virtual const TensorBuffer& output (std::size_t index) const noexcept = 0;

    // Reads input(i), writes output(j). After load() it touches only those buffers
    // in elkrt's code; what the engine library does inside is its own (see
    // realtimeSafe()).
    virtual bool run() noexcept = 0;

    // True when the engine's run is known not to allocate, lock or make system
    // calls once primed; false sends the model to the worker pool by default.
    virtual bool realtimeSafe() const noexcept = 0;
    virtual const char* name() const noexcept = 0;

    int inputIndex (const std::string& tensorName) const noexcept;
    int outputIndex (const std::string& tensorName) const noexcept;
};

// The engines compiled into this library (nullptr for one that is not).
std::unique_ptr<Engine> makeOnnxEngine();
std::unique_ptr<Engine> makeTfliteEngine();
std::unique_ptr<Engine> makeEngine (const std::string& engineName);

} // namespace elkrt
