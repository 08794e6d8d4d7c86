// Deterministic engines for the unit tests: fixed tensors and a compute function.
#pragma once

#include "elkrt/engine.h"
#include "elkrt/streaming_model.h"

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

namespace elkrt_test
{

class FakeEngine final : public elkrt::Engine
{
public:
    using Compute = std::function<bool (FakeEngine&)>;

    FakeEngine (std::vector<elkrt::TensorSpec> inputSpecs, std::vector<elkrt::TensorSpec> outputSpecs, Compute body,
                bool safe = true)
        : compute (std::move (body)), safeForRealtime (safe)
    {
        for (auto& spec : inputSpecs)
            inputs.emplace_back (spec);
        for (auto& spec : outputSpecs)
            outputs.emplace_back (spec);
    }

    bool load (const std::string&, const elkrt::ShapeOverrides&, std::string&) override { return true; }
    std::size_t inputCount() const noexcept override { return inputs.size(); }
    std::size_t outputCount() const noexcept override { return outputs.size(); }
    elkrt::TensorBuffer& input (std::size_t index) noexcept override { return inputs[index]; }
    const elkrt::TensorBuffer& output (std::size_t index) const noexcept override { return outputs[index]; }
    elkrt::TensorBuffer& mutableOutput (std::size_t index) noexcept { return outputs[index]; }
    bool run() noexcept override
    {
        ++runs;
        return compute (*this);
    }
    bool realtimeSafe() const noexcept override { return safeForRealtime; }
    const char* name() const noexcept override { return "fake"; }

    float* in (std::size_t index) { return inputs[index].as<float>(); }
    float* out (std::size_t index) { return outputs[index].as<float>(); }

    long runs = 0;

private:
    Compute compute;
    bool safeForRealtime;
    std::vector<elkrt::TensorBuffer> inputs, outputs;
};

inline elkrt::TensorSpec floats (const std::string& name, std::vector<int64_t> shape)
{
    return { name, elkrt::DType::Float32, std::move (shape) };
}

inline elkrt::TensorBinding audio (const std::string& name, bool isInput, int timeAxis, int channelAxis = -1)
{
    elkrt::TensorBinding binding;
    binding.name = name;
    binding.isInput = isInput;
    binding.role = isInput ? elkrt::TensorRole::AudioIn : elkrt::TensorRole::AudioOut;
    binding.timeAxis = timeAxis;
    binding.channelAxis = channelAxis;
    return binding;
}

inline elkrt::TensorBinding stateIn (const std::string& name, const std::string& from)
{
    elkrt::TensorBinding binding;
    binding.name = name;
    binding.role = elkrt::TensorRole::StateIn;
    binding.stateFrom = from;
    return binding;
}

inline elkrt::TensorBinding stateOut (const std::string& name)
{
    elkrt::TensorBinding binding;
    binding.name = name;
    binding.isInput = false;
    binding.role = elkrt::TensorRole::StateOut;
    return binding;
}

// y = x over frames of `frame` samples: input x [1, frame], output y [1, frame];
// trained at `sampleRate` (0: any rate).
inline std::unique_ptr<elkrt::StreamingModel> identityModel (int64_t frame, bool realtimeSafe = true,
                                                             double sampleRate = 0.0)
{
    auto engine = std::make_unique<FakeEngine> (
        std::vector<elkrt::TensorSpec> { floats ("x", { 1, frame }) }, std::vector<elkrt::TensorSpec> { floats ("y", { 1, frame }) },
        [frame] (FakeEngine& e) {
            for (int64_t t = 0; t < frame; ++t)
                e.out (0)[t] = e.in (0)[t];
            return true;
        },
        realtimeSafe);
    elkrt::ModelDescription description;
    description.tensors = { audio ("x", true, 1), audio ("y", false, 1) };
    description.sampleRate = sampleRate;
    return std::make_unique<elkrt::StreamingModel> (std::move (engine), description);
}

// A stateful model whose streaming output is a per-sample recursion, whatever the
// frame: s = 0.9 s + x, c = c + 0.001 x, y = s + c; state h = [s, c] in and out.
inline float recursionStep (float x, float& s, float& c)
{
    s = 0.9f * s + x;
    c = c + 0.001f * x;
    return s + c;
}

inline std::unique_ptr<FakeEngine> statefulEngine (int64_t frame, bool realtimeSafe = true)
{
    return std::make_unique<FakeEngine> (
        std::vector<elkrt::TensorSpec> { floats ("h", { 1, 2 }), floats ("x", { 1, frame, 1 }) },
        std::vector<elkrt::TensorSpec> { floats ("y", { 1, frame, 1 }), floats ("h_out", { 1, 2 }) },
        [frame] (FakeEngine& e) {
            float s = e.in (0)[0], c = e.in (0)[1];
            for (int64_t t = 0; t < frame; ++t)
                e.out (0)[t] = recursionStep (e.in (1)[t], s, c);
            e.out (1)[0] = s;
            e.out (1)[1] = c;
            return true;
        },
        realtimeSafe);
}

inline elkrt::ModelDescription statefulDescription()
{
    elkrt::ModelDescription description;
    description.tensors = { audio ("x", true, 1, 2), audio ("y", false, 1, 2), stateIn ("h", "h_out"), stateOut ("h_out") };
    return description;
}

inline std::unique_ptr<elkrt::StreamingModel> statefulModel (int64_t frame, bool realtimeSafe = true)
{
    return std::make_unique<elkrt::StreamingModel> (statefulEngine (frame, realtimeSafe), statefulDescription());
}

// A model with past context C: input [1, C + F], output [1, F],
// y[n] = x[n] - 0.5 x[n - C] + 0.25 x[n - C/2] over the whole signal.
inline std::unique_ptr<elkrt::StreamingModel> contextModel (int64_t frame, int64_t context)
{
    auto engine = std::make_unique<FakeEngine> (
        std::vector<elkrt::TensorSpec> { floats ("x", { 1, context + frame }) },
        std::vector<elkrt::TensorSpec> { floats ("y", { 1, frame }) },
        [frame, context] (FakeEngine& e) {
            const float* x = e.in (0);
            for (int64_t t = 0; t < frame; ++t)
                e.out (0)[t] = x[t + context] - 0.5f * x[t] + 0.25f * x[t + context - context / 2];
            return true;
        });
    elkrt::ModelDescription description;
    description.tensors = { audio ("x", true, 1), audio ("y", false, 1) };
    return std::make_unique<elkrt::StreamingModel> (std::move (engine), description);
}

inline float contextReference (const std::vector<float>& x, int64_t n, int64_t context)
{
    auto at = [&] (int64_t i) { return i < 0 ? 0.0f : x[static_cast<std::size_t> (i)]; };
    return at (n) - 0.5f * at (n - context) + 0.25f * at (n - context / 2);
}

// A deterministic test signal.
inline std::vector<float> testSignal (std::size_t length, unsigned seed = 1)
{
    std::vector<float> signal (length);
    unsigned state = seed * 2654435761u + 12345u;
    for (auto& sample : signal)
    {
        state = state * 1664525u + 1013904223u;
        sample = static_cast<float> ((state >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    return signal;
}

// Streams a mono signal through `model` in blocks (sizes taken in turn from
// `blocks`, a 0 is skipped); the last block is filled up with zeros, as a host
// with fixed blocks does. Returns the output, as long as the input.
inline std::vector<float> stream (elkrt::StreamingModel& model, std::vector<float> input,
                                  const std::vector<int>& blocks)
{
    const std::size_t length = input.size();
    const auto largest = static_cast<std::size_t> (*std::max_element (blocks.begin(), blocks.end()));
    input.resize (length + largest, 0.0f);
    std::vector<float> output (input.size(), 0.0f);
    std::size_t position = 0, turn = 0;
    while (position < length)
    {
        const auto count = static_cast<std::size_t> (blocks[turn++ % blocks.size()]);
        const float* in[1] = { input.data() + position };
        float* out[1] = { output.data() + position };
        model.process (in, out, static_cast<int> (count));
        position += count;
    }
    output.resize (length);
    return output;
}

inline elkrt::StreamingConfig inlineConfig (int block, int channels = 1)
{
    elkrt::StreamingConfig config;
    config.maxHostBlock = block;
    config.hostChannels = channels;
    config.mode = elkrt::ExecutionMode::Inline;
    config.measureRuns = 1;
    return config;
}

} // namespace elkrt_test
