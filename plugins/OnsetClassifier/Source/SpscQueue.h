// A single-producer single-consumer queue of fixed capacity: the hand-off between
// the audio thread and the inference worker. Push and pop never allocate, lock or
// make a system call, so the audio thread stays in the real-time domain.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>

namespace elkbuild
{

template <typename T, std::size_t Capacity>
class SpscQueue
{
    static_assert ((Capacity & (Capacity - 1)) == 0, "Capacity must be a power of two");

public:
    bool push (const T& item) noexcept
    {
        const auto tail = tailIndex.load (std::memory_order_relaxed);
        if (tail - headIndex.load (std::memory_order_acquire) == Capacity)
            return false; // full: the caller drops the item rather than wait
        slots[tail & (Capacity - 1)] = item;
        tailIndex.store (tail + 1, std::memory_order_release);
        return true;
    }

    // The oldest item, or nullptr; stays in the queue until pop().
    const T* front() const noexcept
    {
        const auto head = headIndex.load (std::memory_order_relaxed);
        if (head == tailIndex.load (std::memory_order_acquire))
            return nullptr;
        return &slots[head & (Capacity - 1)];
    }

    bool pop (T& item) noexcept
    {
        const auto* oldest = front();
        if (oldest == nullptr)
            return false;
        item = *oldest;
        headIndex.store (headIndex.load (std::memory_order_relaxed) + 1, std::memory_order_release);
        return true;
    }

    void clear() noexcept { headIndex.store (tailIndex.load (std::memory_order_acquire), std::memory_order_release); }

private:
    std::array<T, Capacity> slots {};
    // Each index on its own cache line: producer and consumer do not share one.
    alignas (64) std::atomic<std::size_t> headIndex { 0 };
    alignas (64) std::atomic<std::size_t> tailIndex { 0 };
};

} // namespace elkbuild
