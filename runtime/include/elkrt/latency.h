// The delay streaming adds, as pure arithmetic (all counts in host samples).
//
// Inline, a model frame F is run as soon as it is complete, inside the host block
// that completes it. After k host blocks of H samples, k*H samples went in and
// floor(k*H / F) * F came out of the model, so the output must lag by the largest
// remainder (k*H) mod F over all k. The multiples of H modulo F are exactly the
// multiples of gcd(F, H) below F, so that lag is F - gcd(F, H): 0 when F divides H,
// F - H when H divides F. A host whose blocks vary in size can leave any remainder,
// so the lag is then F - 1.
//
// Decoupled, a frame completed in block k is picked up by a worker and comes back
// m = ceil(I / H) blocks later (I: the worst time from hand-over to result, in
// samples), at least one block later since the audio thread never waits. With the
// model's own latency M that is L = H_adapt + m * H + M with H_adapt as above:
// anira's L = H_adapt + ceil(I_max / H_host) * H_host + M_int.
#pragma once

#include <cstdint>

namespace elkrt
{

int64_t greatestCommonDivisor (int64_t a, int64_t b) noexcept;

// The largest remainder of host input over model frames (H_adapt).
int64_t bufferAdaptationLatency (int64_t modelFrame, int64_t hostBlock, bool fixedHostBlock) noexcept;

int64_t inlineLatency (int64_t modelFrame, int64_t hostBlock, bool fixedHostBlock,
                       int64_t modelLatency = 0) noexcept;

// Blocks a result needs to come back: ceil(inferenceSamples / hostBlock), at least 1.
int64_t inferenceBlocks (double inferenceSamples, int64_t hostBlock) noexcept;

int64_t decoupledLatency (int64_t modelFrame, int64_t hostBlock, bool fixedHostBlock,
                          double inferenceSamples, int64_t modelLatency = 0) noexcept;

// Most model frames one host block can complete: ceil(H / F) (and 1 when H < F).
int64_t framesPerBlockMax (int64_t modelFrame, int64_t hostBlock) noexcept;

} // namespace elkrt
