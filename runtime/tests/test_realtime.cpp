// process() on the audio thread allocates nothing: every operator new of this
// program is counted while the calling thread is being watched.
#include "fake_engine.h"
#include "test_support.h"
#include "elkrt/log_mel.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace
{
thread_local bool watching = false;
std::atomic<long> watchedAllocations { 0 };

void* allocate (std::size_t size)
{
    if (watching)
        watchedAllocations.fetch_add (1);
    if (void* memory = std::malloc (size == 0 ? 1 : size))
        return memory;
    throw std::bad_alloc();
}
} // namespace

void* operator new (std::size_t size) { return allocate (size); }
void* operator new[] (std::size_t size) { return allocate (size); }
void operator delete (void* memory) noexcept { std::free (memory); }
void operator delete[] (void* memory) noexcept { std::free (memory); }
void operator delete (void* memory, std::size_t) noexcept { std::free (memory); }
void operator delete[] (void* memory, std::size_t) noexcept { std::free (memory); }

using namespace elkrt;
using namespace elkrt_test;

ELKRT_TEST (process_allocates_nothing)
{
    // The counter sees an allocation on a watched thread.
    watching = true;
    auto* probe = new std::vector<float> (8);
    watching = false;
    delete probe;
    CHECK (watchedAllocations.load() >= 2);

    InferencePool pool ({ 1 });
    // Inline; decoupled on a pool of this library's own; on the process-wide pool of
    // libelkrt_pool.so.1 (its workers reach the model through the C ABI).
    WorkerPool* pools[] = { nullptr, &pool, &sharedPool() };
    const auto left = testSignal (64 * 100, 41), right = testSignal (64 * 100, 42);
    for (WorkerPool* decoupled : pools)
        for (int64_t frame : { 64, 576 })
        {
            auto model = statefulModel (frame);
            auto config = inlineConfig (100, 2);
            if (decoupled != nullptr)
            {
                config.mode = ExecutionMode::Decoupled;
                config.pool = decoupled;
                config.timingCapacity = 64;
            }
            std::string error;
            CHECK (model->prepare (config, error));
            model->setOffline (decoupled != nullptr); // waits, but must not allocate either
            std::vector<float> outLeft (left.size()), outRight (right.size());
            watchedAllocations = 0;
            for (std::size_t start = 0; start + 100 <= left.size(); start += 100)
            {
                const float* in[2] = { left.data() + start, right.data() + start };
                float* out[2] = { outLeft.data() + start, outRight.data() + start };
                watching = true;
                model->process (in, out, 100);
                watching = false;
            }
            CHECK_EQ (watchedAllocations.load(), 0L);
            CHECK (model->stats().framesRun > 0);
        }
}

ELKRT_TEST (log_mel_push_allocates_nothing)
{
    LogMelSettings settings;
    settings.sampleRate = 48000.0;
    settings.fftSize = 1024;
    settings.hop = 256;
    settings.melBands = 64;
    LogMelFrontEnd frontEnd (settings); // allocates here, before audio starts
    const auto signal = testSignal (48000, 7);
    std::vector<float> frames (8 * 64);
    int framesMade = 0;
    watchedAllocations = 0;
    for (std::size_t start = 0; start + 100 <= signal.size(); start += 100)
    {
        int consumed = 0;
        watching = true;
        framesMade += frontEnd.push (signal.data() + start, 100, frames.data(), 8, consumed);
        watching = false;
        CHECK_EQ (consumed, 100);
    }
    CHECK_EQ (watchedAllocations.load(), 0L);
    CHECK_EQ (framesMade, 1 + (48000 - 1024) / 256);
}
