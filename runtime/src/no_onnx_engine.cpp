// Built without ONNX Runtime (ELKRT_WITH_ONNX=OFF).
#include "elkrt/engine.h"

namespace elkrt
{
std::unique_ptr<Engine> makeOnnxEngine() { return nullptr; }
}
