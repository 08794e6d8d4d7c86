#include "elkrt/latency.h"

#include <algorithm>
#include <cmath>

namespace elkrt
{

int64_t greatestCommonDivisor (int64_t a, int64_t b) noexcept
{
    while (b != 0)
    {
        const int64_t rest = a % b;
        a = b;
        b = rest;
    }
    return a;
}

int64_t bufferAdaptationLatency (int64_t modelFrame, int64_t hostBlock, bool fixedHostBlock) noexcept
{
    if (modelFrame <= 1)
        return 0;
    if (! fixedHostBlock)
        return modelFrame - 1;
    return modelFrame - greatestCommonDivisor (modelFrame, hostBlock);
}

int64_t inlineLatency (int64_t modelFrame, int64_t hostBlock, bool fixedHostBlock, int64_t modelLatency) noexcept
{
    return bufferAdaptationLatency (modelFrame, hostBlock, fixedHostBlock) + modelLatency;
}

int64_t inferenceBlocks (double inferenceSamples, int64_t hostBlock) noexcept
{
    const auto blocks = static_cast<int64_t> (std::ceil (inferenceSamples / static_cast<double> (hostBlock)));
    return std::max<int64_t> (1, blocks);
}

int64_t decoupledLatency (int64_t modelFrame, int64_t hostBlock, bool fixedHostBlock,
                          double inferenceSamples, int64_t modelLatency) noexcept
{
    return bufferAdaptationLatency (modelFrame, hostBlock, fixedHostBlock)
         + inferenceBlocks (inferenceSamples, hostBlock) * hostBlock + modelLatency;
}

int64_t framesPerBlockMax (int64_t modelFrame, int64_t hostBlock) noexcept
{
    return std::max<int64_t> (1, (hostBlock + modelFrame - 1) / modelFrame);
}

} // namespace elkrt
