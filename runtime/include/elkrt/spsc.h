// Lock-free single-producer single-consumer queues: the only hand-over between
// the audio thread and an inference worker. Push and pop never allocate, lock or
// make a system call, so the audio thread stays in the real-time domain.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <vector>

namespace elkrt
{

// Items of a fixed type, capacity fixed at compile time.
template <typename T, std::size_t Capacity>
class SpscQueue
{
    static_assert ((Capacity & (Capacity - 1)) == 0, "Capacity must be a power of two");

public:
    bool push (const T& item) noexcept
    {
        const auto tail = tailIndex.load (std::memory_order_relaxed);
        if (tail - headIndex.load (std::memory_order_acquire) == Capacity)
            return false; // full: the caller decides, never waits
        slots[tail & (Capacity - 1)] = item;
        tailIndex.store (tail + 1, std::memory_order_release);
        return true;
    }

    bool pop (T& item) noexcept
    {
        const auto head = headIndex.load (std::memory_order_relaxed);
        if (head == tailIndex.load (std::memory_order_acquire))
            return false;
        item = slots[head & (Capacity - 1)];
        headIndex.store (head + 1, std::memory_order_release);
        return true;
    }

    // The oldest item, or nullptr; it stays queued until pop() (the consumer may
    // look before it decides to take it, e.g. a result not due yet).
    const T* front() const noexcept
    {
        const auto head = headIndex.load (std::memory_order_relaxed);
        if (head == tailIndex.load (std::memory_order_acquire))
            return nullptr;
        return &slots[head & (Capacity - 1)];
    }

    // Consumer side: drop everything queued so far.
    void clear() noexcept { headIndex.store (tailIndex.load (std::memory_order_acquire), std::memory_order_release); }

    std::size_t size() const noexcept
    {
        return tailIndex.load (std::memory_order_acquire) - headIndex.load (std::memory_order_acquire);
    }

private:
    std::array<T, Capacity> slots {};
    // Each index on its own cache line: producer and consumer never share one.
    alignas (64) std::atomic<std::size_t> headIndex { 0 };
    alignas (64) std::atomic<std::size_t> tailIndex { 0 };
};

// Samples in bulk, capacity chosen at allocate() (rounded up to a power of two).
// allocate() and clear() are for when neither side is running.
class SpscSampleQueue
{
public:
    void allocate (std::size_t minimumCapacity)
    {
        std::size_t capacity = 1;
        while (capacity < minimumCapacity)
            capacity <<= 1;
        samples.assign (capacity, 0.0f);
        mask = capacity - 1;
        clear();
    }

    void clear() noexcept
    {
        headIndex.store (0, std::memory_order_relaxed);
        tailIndex.store (0, std::memory_order_release);
    }

    std::size_t capacity() const noexcept { return samples.size(); }

    // Consumer side: samples ready to read.
    std::size_t readable() const noexcept
    {
        return tailIndex.load (std::memory_order_acquire) - headIndex.load (std::memory_order_relaxed);
    }

    // Producer side: room to write.
    std::size_t writable() const noexcept
    {
        return samples.size() - (tailIndex.load (std::memory_order_relaxed) - headIndex.load (std::memory_order_acquire));
    }

    // Writes all `count` samples or none (a partial write would misalign frames).
    bool write (const float* input, std::size_t count) noexcept
    {
        if (count > writable())
            return false;
        const auto tail = tailIndex.load (std::memory_order_relaxed);
        copyIn (tail, input, count);
        tailIndex.store (tail + count, std::memory_order_release);
        return true;
    }

    bool writeZeros (std::size_t count) noexcept
    {
        if (count > writable())
            return false;
        const auto tail = tailIndex.load (std::memory_order_relaxed);
        for (std::size_t i = 0; i < count; ++i)
            samples[(tail + i) & mask] = 0.0f;
        tailIndex.store (tail + count, std::memory_order_release);
        return true;
    }

    // Reads min(count, readable()) samples (output nullptr: discards them).
    std::size_t read (float* output, std::size_t count) noexcept
    {
        count = std::min (count, readable());
        const auto head = headIndex.load (std::memory_order_relaxed);
        if (output != nullptr)
        {
            const std::size_t start = head & mask;
            const std::size_t first = std::min (count, samples.size() - start);
            std::memcpy (output, samples.data() + start, first * sizeof (float));
            std::memcpy (output + first, samples.data(), (count - first) * sizeof (float));
        }
        headIndex.store (head + count, std::memory_order_release);
        return count;
    }

private:
    void copyIn (std::size_t tail, const float* input, std::size_t count) noexcept
    {
        const std::size_t start = tail & mask;
        const std::size_t first = std::min (count, samples.size() - start);
        std::memcpy (samples.data() + start, input, first * sizeof (float));
        std::memcpy (samples.data(), input + first, (count - first) * sizeof (float));
    }

    std::vector<float> samples;
    std::size_t mask = 0;
    alignas (64) std::atomic<std::size_t> headIndex { 0 };
    alignas (64) std::atomic<std::size_t> tailIndex { 0 };
};

} // namespace elkrt
