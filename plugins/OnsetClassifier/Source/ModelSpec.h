// What OnsetClassifier knows about its model, read from classifier.tflite by `invoke new-plugin`.
// Every buffer is sized from these numbers before audio starts.
#pragma once

#include <cstddef>

namespace elkbuild::model
{
constexpr const char* file = "classifier.tflite";
constexpr const char* inputName = "features";    // shape [1, 8]
constexpr const char* outputName = "probabilities";  // shape [1, 4]
constexpr std::size_t features = 8;
constexpr std::size_t classes = 4;
// The analysis window after an onset, split into `features` equal parts whose
// log energies are the model's input.
constexpr double windowMs = 46.0;
// Class i is reported as MIDI note firstNote + i on channel 1.
constexpr int firstNote = 60;
} // namespace elkbuild::model
