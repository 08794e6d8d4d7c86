#include "test_support.h"

#include "elkrt/latency.h"

using namespace elkrt;

ELKRT_TEST (latency_arithmetic)
{
    CHECK_EQ (greatestCommonDivisor (576, 100), 4);
    CHECK_EQ (greatestCommonDivisor (64, 576), 64);
    // A frame that divides the block: no adaptation latency.
    CHECK_EQ (bufferAdaptationLatency (64, 64, true), 0);
    CHECK_EQ (bufferAdaptationLatency (32, 128, true), 0);
    CHECK_EQ (bufferAdaptationLatency (1, 100, true), 0);
    // A block that divides the frame: F - H.
    CHECK_EQ (bufferAdaptationLatency (256, 64, true), 192);
    // Variable host blocks: any remainder, F - 1.
    CHECK_EQ (bufferAdaptationLatency (576, 64, false), 575);
    CHECK_EQ (inlineLatency (576, 64, true, 10), 512 + 10);

    // Brute force: the largest remainder of k*H mod F over many k.
    for (int64_t frame : { 1, 7, 64, 100, 441, 576, 1024 })
        for (int64_t block : { 1, 32, 64, 100, 128, 333, 512, 1000 })
        {
            int64_t largest = 0;
            for (int64_t k = 1; k <= 4 * frame; ++k)
                largest = std::max (largest, (k * block) % frame);
            CHECK_EQ (bufferAdaptationLatency (frame, block, true), largest);
        }

    CHECK_EQ (inferenceBlocks (0.0, 64), 1);  // decoupled: never within the same block
    CHECK_EQ (inferenceBlocks (64.0, 64), 1);
    CHECK_EQ (inferenceBlocks (64.5, 64), 2);
    CHECK_EQ (decoupledLatency (64, 64, true, 100.0, 0), 0 + 2 * 64);
    CHECK_EQ (decoupledLatency (576, 100, true, 250.0, 5), 572 + 3 * 100 + 5);
    CHECK_EQ (framesPerBlockMax (576, 64), 1);
    CHECK_EQ (framesPerBlockMax (64, 128), 2);
    CHECK_EQ (framesPerBlockMax (100, 128), 2);
}

ELKRT_TEST (latency_examples_from_the_issue)
{
    // F = 576 with the common host blocks.
    CHECK_EQ (inlineLatency (576, 64, true), 512);
    CHECK_EQ (inlineLatency (576, 100, true), 572);
    CHECK_EQ (inlineLatency (576, 128, true), 512);
    CHECK_EQ (inlineLatency (576, 1000, true), 568);
    // One-block frames, the usual amp model case.
    CHECK_EQ (inlineLatency (64, 64, true), 0);
    CHECK_EQ (inlineLatency (64, 100, true), 60);
    CHECK_EQ (inlineLatency (64, 128, true), 0);
    // Decoupled at 48 kHz, 64-sample blocks, 1 ms inference: ceil(48 / 64) = 1 block.
    CHECK_EQ (decoupledLatency (64, 64, true, 48.0), 64);
    // 5.2 ms per 1.33 ms block (the WaveNet case of the issue): 250 samples -> 4 blocks.
    CHECK_EQ (decoupledLatency (64, 64, true, 0.0052 * 48000), 4 * 64);
}
