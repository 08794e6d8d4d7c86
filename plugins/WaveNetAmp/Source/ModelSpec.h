// What WaveNetAmp knows about its model, read from wavenet.onnx by `invoke new-plugin`.
// Every buffer is sized from these numbers before audio starts.
#pragma once

#include <cstddef>

namespace elkbuild::model
{
constexpr const char* file = "wavenet.onnx";
// What each tensor is for (plugin.yaml's model_roles) travels beside the model as
// <file>.roles, in the runtime's description format (elkrt/model_description.h).
constexpr const char* rolesSuffix = ".roles";
} // namespace elkbuild::model
