// Tensors as the runtime sees them: a name, an element type and a shape that is
// fixed before audio starts, over storage allocated once in prepare().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace elkrt
{

enum class DType
{
    Float32,
    Int32,
    Int64,
};

std::size_t dtypeSize (DType type) noexcept;
const char* dtypeName (DType type) noexcept;

struct TensorSpec
{
    std::string name;
    DType type = DType::Float32;
    std::vector<int64_t> shape; // every dimension >= 1 once configured

    std::size_t elementCount() const noexcept;
    std::size_t byteCount() const noexcept { return elementCount() * dtypeSize (type); }
    std::string shapeText() const;
};

// Storage for one tensor. Allocated (and zeroed) by allocate(), never resized
// afterwards, so engines may bind their tensor handles to data() once.
class TensorBuffer
{
public:
    TensorBuffer() = default;
    explicit TensorBuffer (TensorSpec given) { allocate (std::move (given)); }

    void allocate (TensorSpec given);
    void zero() noexcept;

    const TensorSpec& spec() const noexcept { return tensorSpec; }
    std::size_t byteCount() const noexcept { return bytes; }
    std::size_t elementCount() const noexcept { return tensorSpec.elementCount(); }

    void* data() noexcept { return storage.get(); }
    const void* data() const noexcept { return storage.get(); }
    template <typename T> T* as() noexcept { return static_cast<T*> (data()); }
    template <typename T> const T* as() const noexcept { return static_cast<const T*> (data()); }

private:
    struct AlignedFree
    {
        void operator() (std::byte* memory) const noexcept;
    };
    TensorSpec tensorSpec;
    std::size_t bytes = 0;
    std::unique_ptr<std::byte[], AlignedFree> storage;
};

} // namespace elkrt
