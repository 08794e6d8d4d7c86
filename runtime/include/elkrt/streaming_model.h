// A model streamed over host blocks: the audio thread hands over host blocks; the
// model sees its own frames (never padded) with its past context and recurrent
// state, inline or on the shared worker pool. The output is the model's streaming
// output delayed by exactly latencySamples(). Should samples not be ready in time
// (a late worker, a block outside the prepared assumption), zeros go out and the
// late samples are dropped when they arrive: the delay never drifts.
//
// Lanes: a model whose audio has one channel runs once per host channel, each
// host channel with its own past and state (a lane); a model with as many
// channels as the host runs once for all of them.
#pragma once

#include "elkrt/engine.h"
#include "elkrt/frame_fifo.h"
#include "elkrt/inference_pool.h"
#include "elkrt/model_description.h"
#include "elkrt/ring_buffer.h"
#include "elkrt/spsc.h"
#include "elkrt/state_feedback.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace elkrt
{

enum class ExecutionMode
{
    Automatic, // decoupled when the engine is not real-time safe or a block's inference
               // takes more than half the block period, else inline
    Inline,
    Decoupled,
};

struct StreamingConfig
{
    int hostChannels = 1;
    int maxHostBlock = 64;
    // The host always sends maxHostBlock samples (Sushi does). When false, any
    // block size up to maxHostBlock is handled at a higher latency (see latency.h).
    bool fixedHostBlock = true;
    double hostSampleRate = 48000.0;
    ExecutionMode mode = ExecutionMode::Automatic;
    // Decoupled: the time one host block's inference may take on a worker. 0:
    // measured in prepare() (slowest of measureRuns, times inferenceSafety, and at
    // least that plus one block period), plus the pool's idle sleep bound either way.
    double inferenceBudgetSeconds = 0.0;
    double inferenceSafety = 2.0;
    int measureRuns = 8;
    // Decoupled: keep this many worker inference durations for stats (0: none).
    std::size_t timingCapacity = 0;
    WorkerPool* pool = nullptr; // nullptr: sharedPool()
};

struct StreamingStats
{
    uint64_t framesRun = 0;
    uint64_t failedRuns = 0;
    uint64_t underrunSamples = 0; // output samples that were not ready (zeros instead)
    uint64_t overrunSamples = 0;  // input samples a full queue could not take
    double measuredInferenceSeconds = 0.0; // slowest block's inference in prepare()
    double runBudgetSeconds = 0.0; // decoupled: the time one worker run (a frame, all lanes) may take
};

class StreamingModel final : private PoolClient
{
public:
    static constexpr std::size_t maxChannels = 32;

    StreamingModel (std::unique_ptr<Engine> loadedEngine, ModelDescription description);
    ~StreamingModel() override;

    // Not real-time safe: checks the description against the engine, allocates every
    // buffer, measures inference, computes the latency and resets. On false, error
    // names the tensor or setting at fault and the model must not be used.
    bool prepare (const StreamingConfig& config, std::string& error);

    // Not real-time safe (waits for the worker to let go): zero state, past and queues.
    void reset();

    // Offline (non-realtime) hosts: in decoupled mode process() then waits for the
    // worker (sleeping), so every run gives the same output; inline is unaffected.
    // Switching is an atomic store, allowed between any two blocks.
    void setOffline (bool offline);

    // Real-time safe: no allocation, lock or system call. input and output hold
    // hostChannels pointers to numSamples samples; they may be the same buffers.
    // Blocks up to maxHostBlock keep the latency promised; a larger one is taken
    // in parts of maxHostBlock.
    void process (const float* const* input, float* const* output, int numSamples) noexcept;

    int latencySamples() const noexcept { return static_cast<int> (latency); }
    int modelFrame() const noexcept { return static_cast<int> (frame); }
    int pastContext() const noexcept { return static_cast<int> (context); }
    bool decoupled() const noexcept { return isDecoupled; }
    int lanes() const noexcept { return static_cast<int> (laneStates.size()); }
    // The rate the model was trained at (its description's sample_rate; 0: any).
    double modelSampleRate() const noexcept { return modelDescription.sampleRate; }
    StreamingStats stats() const noexcept;
    // Worker inference durations (seconds per run of one frame for all lanes), oldest
    // first; only while no block is being processed.
    std::vector<double> inferenceTimes() const;
    Engine& engine() noexcept { return *model; }

private:
    struct AudioLayout
    {
        std::size_t tensorIndex = 0;
        std::size_t timeLength = 0;
        std::size_t timeStride = 0;
        std::size_t channelStride = 0;
        std::size_t channels = 1;
    };

    bool describe (std::string& error);
    bool checkConstant (const TensorBinding& binding, std::size_t index, std::string& error);
    double measureBlockInference();
    // One model frame for every host channel: planar frameInput -> planar frameOutput.
    void runFrame() noexcept;
    void processInline (const float* const* input, float* const* output, std::size_t count) noexcept;
    void processDecoupled (const float* const* input, float* const* output, std::size_t count) noexcept;
    void processPending() noexcept override;
    bool hasPending() const noexcept override;
    void fillConstants() noexcept;

    std::unique_ptr<Engine> model;
    ModelDescription modelDescription;
    StreamingConfig settings;

    AudioLayout audioIn, audioOut;
    std::vector<std::size_t> constantInputs;
    std::vector<StatePair> statePairs;
    std::size_t frame = 0, context = 0, channels = 1, modelChannels = 1;
    int64_t latency = 0;
    bool isDecoupled = false;
    std::atomic<bool> offlineMode { false };
    bool prepared = false;

    // Per lane: past input (one ring per model channel) and recurrent state.
    std::vector<RingBuffer> history;      // [lane * modelChannels + channel]
    std::vector<StateFeedback> laneStates;
    std::vector<float> contextScratch;    // context + frame samples of one channel

    // One model frame, planar by host channel.
    std::vector<float> frameInput, frameOutput;
    std::size_t frameFill = 0;            // inline: samples of frameInput filled

    // Inline: the delayed output, per host channel.
    std::vector<FrameFifo> outputFifos;
    uint64_t outputDebt = 0;              // samples owed after an underrun, dropped on arrival

    // Decoupled: interleaved samples audio thread -> worker -> audio thread.
    SpscSampleQueue toWorker, fromWorker;
    std::vector<float> interleaved;       // audio thread's scratch (maxHostBlock * channels)
    std::vector<float> workerScratch;     // worker's scratch (frame * channels)
    WorkerPool* pool = nullptr;
    bool attached = false;
    uint64_t samplesIn = 0, samplesOut = 0; // audio thread, per channel

    std::atomic<uint64_t> framesRun { 0 }, failedRuns { 0 }, underruns { 0 }, overruns { 0 };
    double measuredSeconds = 0.0;
    double runBudget = 0.0;               // decoupled: seconds one worker run may take
    std::vector<double> timings;
    std::atomic<std::size_t> timingsWritten { 0 };
};

} // namespace elkrt
