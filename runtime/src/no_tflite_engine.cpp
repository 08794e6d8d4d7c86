// Built without TensorFlow Lite (ELKRT_WITH_TFLITE=OFF).
#include "elkrt/engine.h"

namespace elkrt
{
std::unique_ptr<Engine> makeTfliteEngine() { return nullptr; }
}
