// The most recent samples of one signal, for models with a receptive field: the
// model's input is the past context followed by the new frame. Zeros stand for
// the samples before the very first one (after reset()); never again afterwards.
// Single-threaded; allocated in allocate(), write() and copyLatest() never allocate.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

namespace elkrt
{

class RingBuffer
{
public:
    void allocate (std::size_t capacitySamples)
    {
        samples.assign (capacitySamples, 0.0f);
        writeIndex = 0;
    }

    void reset() noexcept
    {
        std::fill (samples.begin(), samples.end(), 0.0f);
        writeIndex = 0;
    }

    std::size_t capacity() const noexcept { return samples.size(); }

    void write (const float* input, std::size_t count) noexcept
    {
        const std::size_t size = samples.size();
        if (count >= size)
        {
            // Only the newest `size` samples can be kept.
            std::memcpy (samples.data(), input + (count - size), size * sizeof (float));
            writeIndex = 0;
            return;
        }
        const std::size_t first = std::min (count, size - writeIndex);
        std::memcpy (samples.data() + writeIndex, input, first * sizeof (float));
        std::memcpy (samples.data(), input + first, (count - first) * sizeof (float));
        writeIndex = (writeIndex + count) % size;
    }

    // The newest `count` samples (count <= capacity()), oldest first.
    void copyLatest (float* output, std::size_t count) const noexcept
    {
        const std::size_t size = samples.size();
        const std::size_t start = (writeIndex + size - count) % size;
        const std::size_t first = std::min (count, size - start);
        std::memcpy (output, samples.data() + start, first * sizeof (float));
        std::memcpy (output + first, samples.data(), (count - first) * sizeof (float));
    }

private:
    std::vector<float> samples;
    std::size_t writeIndex = 0;
};

} // namespace elkrt
