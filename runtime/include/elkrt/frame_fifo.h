// A single-threaded sample FIFO of fixed capacity: model frames in, host blocks
// out (or the reverse). Allocated once; push/pop never allocate. Streaming
// prefills it with the reported latency in zeros instead of ever padding a
// partial model frame.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

namespace elkrt
{

class FrameFifo
{
public:
    void allocate (std::size_t capacitySamples)
    {
        samples.assign (capacitySamples, 0.0f);
        clear();
    }

    void clear() noexcept { readIndex = writeIndex = stored = 0; }
    std::size_t size() const noexcept { return stored; }
    std::size_t capacity() const noexcept { return samples.size(); }
    std::size_t space() const noexcept { return samples.size() - stored; }

    // Pushes min(count, space()) samples; returns how many.
    std::size_t push (const float* input, std::size_t count) noexcept
    {
        count = std::min (count, space());
        const std::size_t first = std::min (count, samples.size() - writeIndex);
        std::memcpy (samples.data() + writeIndex, input, first * sizeof (float));
        std::memcpy (samples.data(), input + first, (count - first) * sizeof (float));
        writeIndex = (writeIndex + count) % samples.size();
        stored += count;
        return count;
    }

    std::size_t pushZeros (std::size_t count) noexcept
    {
        count = std::min (count, space());
        for (std::size_t i = 0; i < count; ++i)
        {
            samples[writeIndex] = 0.0f;
            writeIndex = (writeIndex + 1) % samples.size();
        }
        stored += count;
        return count;
    }

    // Pops min(count, size()) samples into output (nullptr: discards them).
    std::size_t pop (float* output, std::size_t count) noexcept
    {
        count = std::min (count, stored);
        const std::size_t first = std::min (count, samples.size() - readIndex);
        if (output != nullptr)
        {
            std::memcpy (output, samples.data() + readIndex, first * sizeof (float));
            std::memcpy (output + first, samples.data(), (count - first) * sizeof (float));
        }
        readIndex = (readIndex + count) % samples.size();
        stored -= count;
        return count;
    }

private:
    std::vector<float> samples;
    std::size_t readIndex = 0, writeIndex = 0, stored = 0;
};

} // namespace elkrt
