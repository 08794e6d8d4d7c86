// One small interface over every inference engine a plugin can be built with.
// The engine is chosen when the project is configured (ELKBUILD_ENGINE=onnx|tflite):
// exactly one implementation file is compiled and provides makeEngine().
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace elkbuild
{

class InferenceEngine
{
public:
    virtual ~InferenceEngine() = default;

    // Loads the model, checks its tensor sizes, allocates every tensor and runs one
    // priming inference (engines allocate on their first run). Not real-time safe:
    // call from prepareToPlay or a worker's start-up, never from the audio thread.
    virtual bool create (const std::string& modelPath,
                         std::size_t inputElements,
                         std::size_t outputElements,
                         std::string& error) = 0;

    // input: inputElements floats, output: outputElements floats. After create()
    // it uses only the tensors made there: no allocation, no lock, no system call
    // in elkbuild's code (what the engine library does inside is checked on the board).
    virtual bool run (const float* input, float* output) noexcept = 0;

    // Frees the model and its tensors. Not real-time safe.
    virtual void destroy() noexcept = 0;

    virtual const char* engineName() const noexcept = 0;
};

std::unique_ptr<InferenceEngine> makeEngine();

} // namespace elkbuild
