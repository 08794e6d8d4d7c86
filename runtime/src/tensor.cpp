#include "elkrt/engine.h"
#include "elkrt/tensor.h"

#include <cstring>
#include <new>

namespace elkrt
{

std::size_t dtypeSize (DType type) noexcept
{
    switch (type)
    {
        case DType::Float32: return 4;
        case DType::Int32: return 4;
        case DType::Int64: return 8;
    }
    return 4;
}

const char* dtypeName (DType type) noexcept
{
    switch (type)
    {
        case DType::Float32: return "float32";
        case DType::Int32: return "int32";
        case DType::Int64: return "int64";
    }
    return "?";
}

std::size_t TensorSpec::elementCount() const noexcept
{
    std::size_t count = 1;
    for (auto dimension : shape)
        count *= dimension > 0 ? static_cast<std::size_t> (dimension) : 0;
    return count;
}

std::string TensorSpec::shapeText() const
{
    std::string text = "[";
    for (std::size_t i = 0; i < shape.size(); ++i)
        text += (i ? "," : "") + std::to_string (shape[i]);
    return text + "]";
}

// Cache-line aligned, so no two tensors (nor a tensor and an atomic) share a line.
constexpr std::align_val_t tensorAlignment { 64 };

void TensorBuffer::AlignedFree::operator() (std::byte* memory) const noexcept
{
    ::operator delete[] (memory, tensorAlignment);
}

void TensorBuffer::allocate (TensorSpec newSpec)
{
    tensorSpec = std::move (newSpec);
    bytes = tensorSpec.byteCount();
    storage.reset (static_cast<std::byte*> (::operator new[] (bytes == 0 ? 1 : bytes, tensorAlignment)));
    zero();
}

void TensorBuffer::zero() noexcept
{
    if (storage != nullptr)
        std::memset (storage.get(), 0, bytes);
}

int Engine::inputIndex (const std::string& tensorName) const noexcept
{
    auto& self = const_cast<Engine&> (*this);
    for (std::size_t i = 0; i < inputCount(); ++i)
        if (self.input (i).spec().name == tensorName)
            return static_cast<int> (i);
    return -1;
}

int Engine::outputIndex (const std::string& tensorName) const noexcept
{
    for (std::size_t i = 0; i < outputCount(); ++i)
        if (output (i).spec().name == tensorName)
            return static_cast<int> (i);
    return -1;
}

std::unique_ptr<Engine> makeEngine (const std::string& engineName)
{
    if (engineName == "onnx")
        return makeOnnxEngine();
    if (engineName == "tflite")
        return makeTfliteEngine();
    return nullptr;
}

} // namespace elkrt
