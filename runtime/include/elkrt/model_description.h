// What each tensor of a model is for, so streaming can treat it right: audio in
// and out (with their time and channel axes), state fed back from an output,
// constants fixed at configuration, and extra outputs that are kept but ignored.
// Past context is not a role of its own: it is the audio input's time length
// minus the audio output's (receptive field - 1).
#pragma once

#include "elkrt/engine.h"

#include <string>
#include <vector>

namespace elkrt
{

enum class TensorRole
{
    AudioIn,
    AudioOut,
    StateIn,   // fed from the output named in `stateFrom` of the previous call
    StateOut,
    Constant,  // every element set to `constantValue` at configuration
    Extra,     // an output kept for the caller, not audio
};

struct TensorBinding
{
    std::string name;
    bool isInput = true;
    TensorRole role = TensorRole::Extra;
    int timeAxis = -1;       // audio: the axis that is time
    int channelAxis = -1;    // audio: the axis that is channel, -1 for none (mono)
    std::string stateFrom;   // StateIn: the output that feeds it
    double constantValue = 0.0;
    std::vector<int64_t> shape; // empty: the model's own (must then be static)
};

struct ModelDescription
{
    std::vector<TensorBinding> tensors;
    double sampleRate = 0.0;     // the model's own rate; 0: any
    int modelLatencySamples = 0; // the model's internal latency (M_int), e.g. lookahead

    ShapeOverrides shapeOverrides() const;
    const TensorBinding* find (const std::string& name, bool isInput) const noexcept;

    // Text form, one tensor a line ('#' starts a comment):
    //   input  <name> audio time=<axis> [channel=<axis>] [shape=1,4156,1]
    //   input  <name> state from=<output name> [shape=...]
    //   input  <name> constant value=<number> [shape=...]
    //   output <name> audio time=<axis> [channel=<axis>]
    //   output <name> state | extra
    //   sample_rate <hz>
    //   model_latency <samples>
    static bool parse (const std::string& text, ModelDescription& description, std::string& error);
    static bool load (const std::string& path, ModelDescription& description, std::string& error);
};

} // namespace elkrt
