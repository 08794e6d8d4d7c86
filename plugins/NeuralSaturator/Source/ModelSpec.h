// What NeuralSaturator knows about its model, read from saturator.onnx by `invoke new-plugin`.
// Every buffer is sized from these numbers before audio starts.
#pragma once

#include <cstddef>

namespace elkbuild::model
{
constexpr const char* file = "saturator.onnx";
constexpr const char* inputName = "audio";    // shape [1, 64]
constexpr const char* outputName = "saturated";  // shape [1, 64]
constexpr std::size_t inputElements = 64;
constexpr std::size_t outputElements = 64;
// Audio goes through the model in frames of this many samples, one channel at a time.
constexpr std::size_t frameSamples = 64;
} // namespace elkbuild::model
