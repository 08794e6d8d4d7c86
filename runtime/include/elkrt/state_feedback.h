// Recurrent state of one stream (one lane): each state input is given, every
// call, what its paired output returned the call before; zeros after reset().
// The copies are small (h/c vectors) and keep one engine usable by several lanes.
#pragma once

#include "elkrt/engine.h"

#include <cstddef>
#include <cstring>
#include <vector>

namespace elkrt
{

struct StatePair
{
    std::size_t inputIndex = 0;
    std::size_t outputIndex = 0;
};

class StateFeedback
{
public:
    void allocate (const std::vector<StatePair>& statePairs, const Engine& engine)
    {
        pairs = statePairs;
        values.clear();
        for (const auto& pair : pairs)
            values.emplace_back (engine.output (pair.outputIndex).byteCount(), std::byte {});
    }

    void reset() noexcept
    {
        for (auto& value : values)
            std::memset (value.data(), 0, value.size());
    }

    std::size_t count() const noexcept { return pairs.size(); }

    // Before a run: this lane's state into the engine's state inputs.
    void load (Engine& engine) const noexcept
    {
        for (std::size_t i = 0; i < pairs.size(); ++i)
            std::memcpy (engine.input (pairs[i].inputIndex).data(), values[i].data(), values[i].size());
    }

    // After a run: the next state from the engine's state outputs.
    void store (const Engine& engine) noexcept
    {
        for (std::size_t i = 0; i < pairs.size(); ++i)
            std::memcpy (values[i].data(), engine.output (pairs[i].outputIndex).data(), values[i].size());
    }

    const std::vector<std::byte>& value (std::size_t index) const noexcept { return values[index]; }

private:
    std::vector<StatePair> pairs;
    std::vector<std::vector<std::byte>> values;
};

} // namespace elkrt
