#include "elkrt/streaming_model.h"

#include "elkrt/latency.h"
#include "elkrt/worker_report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

namespace elkrt
{
namespace
{

const char* roleName (TensorRole role)
{
    switch (role)
    {
        case TensorRole::AudioIn:
        case TensorRole::AudioOut: return "audio";
        case TensorRole::StateIn:
        case TensorRole::StateOut: return "state";
        case TensorRole::Constant: return "constant";
        case TensorRole::Extra: return "extra";
    }
    return "?";
}

double secondsSince (std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration<double> (std::chrono::steady_clock::now() - start).count();
}

} // namespace

StreamingModel::StreamingModel (std::unique_ptr<Engine> loadedEngine, ModelDescription description)
    : model (std::move (loadedEngine)), modelDescription (std::move (description))
{
}

StreamingModel::~StreamingModel()
{
    unlistModel (*this);
    if (attached)
        pool->detach (*this);
}

bool StreamingModel::describe (std::string& error)
{
    const TensorBinding* audioInBinding = nullptr;
    const TensorBinding* audioOutBinding = nullptr;
    constantInputs.clear();
    statePairs.clear();

    for (const auto& binding : modelDescription.tensors)
    {
        const int index = binding.isInput ? model->inputIndex (binding.name) : model->outputIndex (binding.name);
        if (index < 0)
        {
            error = std::string ("the description names ") + (binding.isInput ? "input '" : "output '")
                  + binding.name + "', which the model does not have";
            return false;
        }
        if (binding.role == TensorRole::AudioIn || binding.role == TensorRole::AudioOut)
        {
            auto& found = binding.role == TensorRole::AudioIn ? audioInBinding : audioOutBinding;
            if (found != nullptr)
            {
                error = "tensors '" + found->name + "' and '" + binding.name + "' are both audio "
                      + (binding.isInput ? "inputs" : "outputs") + "; mark all but one state, constant or extra";
                return false;
            }
            found = &binding;
        }
    }
    for (std::size_t i = 0; i < model->inputCount(); ++i)
    {
        const auto& name = model->input (i).spec().name;
        if (modelDescription.find (name, true) == nullptr)
        {
            error = "input '" + name + "' " + model->input (i).spec().shapeText()
                  + " has no role; describe it as audio, state or constant";
            return false;
        }
    }
    if (audioInBinding == nullptr || audioOutBinding == nullptr)
    {
        error = std::string ("the description has no audio ") + (audioInBinding == nullptr ? "input" : "output");
        return false;
    }

    auto layoutOf = [&] (const TensorBinding& binding, const TensorBuffer& buffer, AudioLayout& layout) {
        const auto& spec = buffer.spec();
        const int rank = static_cast<int> (spec.shape.size());
        if (spec.type != DType::Float32)
        {
            error = "audio tensor '" + binding.name + "' is " + dtypeName (spec.type) + "; audio must be float32";
            return false;
        }
        if (binding.timeAxis >= rank || binding.channelAxis >= rank || binding.timeAxis == binding.channelAxis)
        {
            error = "audio tensor '" + binding.name + "' " + spec.shapeText() + ": time axis "
                  + std::to_string (binding.timeAxis) + " / channel axis " + std::to_string (binding.channelAxis)
                  + " do not fit its shape";
            return false;
        }
        std::size_t stride = 1;
        for (int axis = rank - 1; axis >= 0; --axis)
        {
            const auto size = static_cast<std::size_t> (spec.shape[static_cast<std::size_t> (axis)]);
            if (axis == binding.timeAxis)
            {
                layout.timeStride = stride;
                layout.timeLength = size;
            }
            else if (axis == binding.channelAxis)
            {
                layout.channelStride = stride;
                layout.channels = size;
            }
            else if (size != 1)
            {
                error = "audio tensor '" + binding.name + "' " + spec.shapeText() + ": axis " + std::to_string (axis)
                      + " is neither time nor channel and not 1";
                return false;
            }
            stride *= size;
        }
        return true;
    };

    audioIn = {};
    audioOut = {};
    audioIn.tensorIndex = static_cast<std::size_t> (model->inputIndex (audioInBinding->name));
    audioOut.tensorIndex = static_cast<std::size_t> (model->outputIndex (audioOutBinding->name));
    if (! layoutOf (*audioInBinding, model->input (audioIn.tensorIndex), audioIn)
        || ! layoutOf (*audioOutBinding, model->output (audioOut.tensorIndex), audioOut))
        return false;
    if (audioIn.channels != audioOut.channels)
    {
        error = "audio input '" + audioInBinding->name + "' has " + std::to_string (audioIn.channels)
              + " channels but audio output '" + audioOutBinding->name + "' has " + std::to_string (audioOut.channels);
        return false;
    }
    if (audioIn.timeLength < audioOut.timeLength)
    {
        error = "audio input '" + audioInBinding->name + "' is shorter (" + std::to_string (audioIn.timeLength)
              + ") than audio output '" + audioOutBinding->name + "' (" + std::to_string (audioOut.timeLength)
              + "); the time lengths must be frame + past context and frame";
        return false;
    }
    frame = audioOut.timeLength;
    context = audioIn.timeLength - frame;
    modelChannels = audioIn.channels;

    for (const auto& binding : modelDescription.tensors)
    {
        if (binding.role == TensorRole::Constant)
        {
            const auto index = static_cast<std::size_t> (model->inputIndex (binding.name));
            constantInputs.push_back (index);
        }
        else if (binding.role == TensorRole::StateIn)
        {
            const int from = model->outputIndex (binding.stateFrom);
            if (from < 0)
            {
                error = "state input '" + binding.name + "' is fed from output '" + binding.stateFrom
                      + "', which the model does not have";
                return false;
            }
            const auto& in = model->input (static_cast<std::size_t> (model->inputIndex (binding.name))).spec();
            const auto& out = model->output (static_cast<std::size_t> (from)).spec();
            if (in.type != out.type || in.byteCount() != out.byteCount())
            {
                error = "state input '" + binding.name + "' " + dtypeName (in.type) + in.shapeText()
                      + " differs from output '" + binding.stateFrom + "' " + dtypeName (out.type) + out.shapeText();
                return false;
            }
            statePairs.push_back ({ static_cast<std::size_t> (model->inputIndex (binding.name)),
                                    static_cast<std::size_t> (from) });
        }
        else if (binding.role == TensorRole::StateOut || binding.role == TensorRole::Extra)
        {
            continue;
        }
        else if (binding.role != TensorRole::AudioIn && binding.role != TensorRole::AudioOut)
        {
            error = "tensor '" + binding.name + "': role " + roleName (binding.role) + " is not handled";
            return false;
        }
    }
    return true;
}

void StreamingModel::fillConstants() noexcept
{
    for (const auto index : constantInputs)
    {
        auto& buffer = model->input (index);
        const auto* binding = modelDescription.find (buffer.spec().name, true);
        const double value = binding != nullptr ? binding->constantValue : 0.0;
        for (std::size_t i = 0; i < buffer.elementCount(); ++i)
        {
            switch (buffer.spec().type)
            {
                case DType::Float32: buffer.as<float>()[i] = static_cast<float> (value); break;
                case DType::Int32: buffer.as<int32_t>()[i] = static_cast<int32_t> (std::llround (value)); break;
                case DType::Int64: buffer.as<int64_t>()[i] = static_cast<int64_t> (std::llround (value)); break;
            }
        }
    }
}

bool StreamingModel::prepare (const StreamingConfig& config, std::string& error)
{
    prepared = false;
    if (attached)
    {
        pool->detach (*this);
        attached = false;
    }
    settings = config;
    if (model == nullptr)
    {
        error = "no engine";
        return false;
    }
    if (settings.hostChannels < 1 || settings.hostChannels > static_cast<int> (maxChannels) || settings.maxHostBlock < 1)
    {
        error = "host channels must be 1 to " + std::to_string (maxChannels) + " and the block size at least 1";
        return false;
    }
    if (modelDescription.sampleRate > 0 && std::abs (modelDescription.sampleRate - settings.hostSampleRate) > 1e-6)
    {
        error = "the model runs at " + std::to_string (static_cast<long> (modelDescription.sampleRate))
              + " Hz but the host at " + std::to_string (static_cast<long> (settings.hostSampleRate))
              + " Hz; set the host to the model's rate";
        return false;
    }
    if (! describe (error))
        return false;
    channels = static_cast<std::size_t> (settings.hostChannels);
    if (modelChannels != 1 && modelChannels != channels)
    {
        error = "the model's audio has " + std::to_string (modelChannels) + " channels, the host "
              + std::to_string (channels) + "; a model must have 1 channel or the host's count";
        return false;
    }
    const std::size_t laneCount = channels / modelChannels;
    const std::size_t block = static_cast<std::size_t> (settings.maxHostBlock);

    history.assign (channels, RingBuffer());
    for (auto& ring : history)
        ring.allocate (context + frame);
    laneStates.assign (laneCount, StateFeedback());
    for (auto& state : laneStates)
        state.allocate (statePairs, *model);
    contextScratch.assign (context + frame, 0.0f);
    frameInput.assign (frame * channels, 0.0f);
    frameOutput.assign (frame * channels, 0.0f);
    fillConstants();

    measuredSeconds = measureBlockInference();
    const bool slow = measuredSeconds > 0.5 * static_cast<double> (block) / settings.hostSampleRate;
    isDecoupled = settings.mode == ExecutionMode::Decoupled
               || (settings.mode == ExecutionMode::Automatic && (! model->realtimeSafe() || slow));

    pool = settings.pool != nullptr ? settings.pool : &sharedPool();
    const auto modelLatency = static_cast<int64_t> (modelDescription.modelLatencySamples);
    if (isDecoupled)
    {
        // Measured: the worker also gets a block period of slack beyond its run time,
        // since its thread is preempted now and then (by far more than 2x a short run).
        const double period = static_cast<double> (block) / settings.hostSampleRate;
        const double budget = settings.inferenceBudgetSeconds > 0.0
                                ? settings.inferenceBudgetSeconds
                                : std::max (measuredSeconds * settings.inferenceSafety, measuredSeconds + period);
        const double wake = std::chrono::duration<double> (pool->maxIdleSleep()).count();
        runBudget = budget / static_cast<double> (framesPerBlockMax (static_cast<int64_t> (frame), static_cast<int64_t> (block)));
        latency = decoupledLatency (static_cast<int64_t> (frame), static_cast<int64_t> (block), settings.fixedHostBlock,
                                    (budget + wake) * settings.hostSampleRate, modelLatency);
    }
    else
    {
        latency = inlineLatency (static_cast<int64_t> (frame), static_cast<int64_t> (block), settings.fixedHostBlock,
                                 modelLatency);
    }
    const auto streamLatency = static_cast<std::size_t> (latency - modelLatency);

    outputFifos.assign (isDecoupled ? 0 : channels, FrameFifo());
    for (auto& fifo : outputFifos)
        fifo.allocate (streamLatency + block + frame);
    // The worker may fall behind by the whole latency before the output runs dry.
    toWorker.allocate (isDecoupled ? 2 * (streamLatency + 2 * block + frame) * channels : 1);
    fromWorker.allocate (isDecoupled ? 2 * (streamLatency + block + frame) * channels : 1);
    interleaved.assign (block * channels, 0.0f);
    workerScratch.assign (frame * channels, 0.0f);
    timings.assign (settings.timingCapacity, 0.0);

    prepared = true;
    reset();
    if (isDecoupled && ! attached)
    {
        error = "the inference pool has no free slot (" + std::to_string (WorkerPool::maxClients) + " models)";
        prepared = false;
        return false;
    }
    listModel (*this);
    return true;
}

double StreamingModel::measureBlockInference()
{
    // Engines were primed in load(); the slowest of a few runs stands for I_max.
    double slowest = 0.0;
    for (int run = 0; run < std::max (1, settings.measureRuns); ++run)
    {
        const auto start = std::chrono::steady_clock::now();
        runFrame();
        slowest = std::max (slowest, secondsSince (start));
    }
    const auto frames = framesPerBlockMax (static_cast<int64_t> (frame), static_cast<int64_t> (settings.maxHostBlock));
    return slowest * static_cast<double> (frames);
}

void StreamingModel::reset()
{
    if (attached)
    {
        pool->detach (*this);
        attached = false;
    }
    for (auto& ring : history)
        ring.reset();
    for (auto& state : laneStates)
        state.reset();
    std::fill (frameInput.begin(), frameInput.end(), 0.0f);
    frameFill = 0;
    outputDebt = 0;
    samplesIn = samplesOut = 0;
    const auto streamLatency = static_cast<std::size_t> (latency - modelDescription.modelLatencySamples);
    for (auto& fifo : outputFifos)
    {
        fifo.clear();
        fifo.pushZeros (streamLatency);
    }
    toWorker.clear();
    fromWorker.clear();
    if (isDecoupled)
        fromWorker.writeZeros (streamLatency * channels);
    framesRun = failedRuns = underruns = overruns = 0;
    timingsWritten = 0;
    if (prepared && isDecoupled)
        attached = pool->attach (*this);
}

void StreamingModel::setOffline (bool offline) { offlineMode.store (offline); }

void StreamingModel::runFrame() noexcept
{
    auto* inputTensor = model->input (audioIn.tensorIndex).as<float>();
    const std::size_t inputLength = context + frame;
    for (std::size_t lane = 0; lane < laneStates.size(); ++lane)
    {
        for (std::size_t channel = 0; channel < modelChannels; ++channel)
        {
            const std::size_t hostChannel = lane * modelChannels + channel;
            auto& ring = history[hostChannel];
            ring.write (frameInput.data() + hostChannel * frame, frame);
            ring.copyLatest (contextScratch.data(), inputLength);
            float* target = inputTensor + channel * audioIn.channelStride;
            if (audioIn.timeStride == 1)
                std::memcpy (target, contextScratch.data(), inputLength * sizeof (float));
            else
                for (std::size_t t = 0; t < inputLength; ++t)
                    target[t * audioIn.timeStride] = contextScratch[t];
        }
        laneStates[lane].load (*model);
        const bool ran = model->run();
        framesRun.fetch_add (1, std::memory_order_relaxed);
        if (! ran)
            failedRuns.fetch_add (1, std::memory_order_relaxed);
        laneStates[lane].store (*model);

        const float* source = model->output (audioOut.tensorIndex).as<float>();
        for (std::size_t channel = 0; channel < modelChannels; ++channel)
        {
            float* target = frameOutput.data() + (lane * modelChannels + channel) * frame;
            const float* from = source + channel * audioOut.channelStride;
            if (! ran)
                std::fill (target, target + frame, 0.0f); // a failed run is silence, never the dry input
            else if (audioOut.timeStride == 1)
                std::memcpy (target, from, frame * sizeof (float));
            else
                for (std::size_t t = 0; t < frame; ++t)
                    target[t] = from[t * audioOut.timeStride];
        }
    }
}

void StreamingModel::process (const float* const* input, float* const* output, int numSamples) noexcept
{
    const auto count = static_cast<std::size_t> (std::max (0, numSamples));
    if (! prepared)
    {
        for (std::size_t channel = 0; channel < channels; ++channel)
            std::fill (output[channel], output[channel] + count, 0.0f);
        return;
    }
    // A block larger than prepared for goes through in prepared-size parts: the
    // buffers are sized for those.
    const auto largest = static_cast<std::size_t> (settings.maxHostBlock);
    const float* inputPart[maxChannels];
    float* outputPart[maxChannels];
    for (std::size_t done = 0; done < count; done += largest)
    {
        const std::size_t part = std::min (largest, count - done);
        for (std::size_t channel = 0; channel < channels; ++channel)
        {
            inputPart[channel] = input[channel] + done;
            outputPart[channel] = output[channel] + done;
        }
        if (isDecoupled)
            processDecoupled (inputPart, outputPart, part);
        else
            processInline (inputPart, outputPart, part);
    }
}

void StreamingModel::processInline (const float* const* input, float* const* output, std::size_t count) noexcept
{
    std::size_t position = 0;
    while (position < count)
    {
        // A partial frame waits for the next block: it is never padded.
        const std::size_t take = std::min (count - position, frame - frameFill);
        for (std::size_t channel = 0; channel < channels; ++channel)
            std::memcpy (frameInput.data() + channel * frame + frameFill, input[channel] + position, take * sizeof (float));
        frameFill += take;
        position += take;
        if (frameFill < frame)
            break;
        runFrame();
        frameFill = 0;
        const std::size_t drop = static_cast<std::size_t> (std::min<uint64_t> (outputDebt, frame));
        outputDebt -= drop;
        for (std::size_t channel = 0; channel < channels; ++channel)
            outputFifos[channel].push (frameOutput.data() + channel * frame + drop, frame - drop);
    }
    std::size_t missing = 0;
    for (std::size_t channel = 0; channel < channels; ++channel)
    {
        const std::size_t got = outputFifos[channel].pop (output[channel], count);
        std::fill (output[channel] + got, output[channel] + count, 0.0f);
        missing = count - got;
    }
    if (missing > 0)
    {
        // Only a host block outside the prepared assumption gets here; the owed samples
        // are dropped when they arrive, so the delay stays latencySamples().
        outputDebt += missing;
        underruns.fetch_add (missing, std::memory_order_relaxed);
    }
}

void StreamingModel::processDecoupled (const float* const* input, float* const* output, std::size_t count) noexcept
{
    for (std::size_t i = 0; i < count; ++i)
        for (std::size_t channel = 0; channel < channels; ++channel)
            interleaved[i * channels + channel] = input[channel][i];
    if (! toWorker.write (interleaved.data(), count * channels))
        overruns.fetch_add (count, std::memory_order_relaxed);
    samplesIn += count;

    if (outputDebt > 0)
    {
        const auto dropped = fromWorker.read (nullptr, static_cast<std::size_t> (outputDebt) * channels) / channels;
        outputDebt -= dropped;
        samplesOut += dropped;
    }
    if (offlineMode.load (std::memory_order_relaxed))
    {
        // Not real time: wait for every sample the worker will deliver for this block.
        const auto streamLatency = static_cast<uint64_t> (latency - modelDescription.modelLatencySamples);
        const uint64_t deliverable = streamLatency + (samplesIn / frame) * frame - samplesOut;
        const std::size_t wanted = static_cast<std::size_t> (std::min<uint64_t> (count, deliverable)) * channels;
        while (fromWorker.readable() < wanted)
            std::this_thread::sleep_for (std::chrono::microseconds (20));
    }
    const std::size_t got = fromWorker.read (interleaved.data(), count * channels) / channels;
    samplesOut += got;
    for (std::size_t channel = 0; channel < channels; ++channel)
    {
        for (std::size_t i = 0; i < got; ++i)
            output[channel][i] = interleaved[i * channels + channel];
        std::fill (output[channel] + got, output[channel] + count, 0.0f);
    }
    if (got < count)
    {
        // The worker is late: zeros now, and its late samples are dropped on arrival so
        // the delay stays latencySamples().
        outputDebt += count - got;
        underruns.fetch_add (count - got, std::memory_order_relaxed);
    }
}

bool StreamingModel::hasPending() const noexcept { return toWorker.readable() >= frame * channels; }

void StreamingModel::processPending() noexcept
{
    const std::size_t frameSamples = frame * channels;
    while (toWorker.readable() >= frameSamples)
    {
        toWorker.read (workerScratch.data(), frameSamples);
        for (std::size_t i = 0; i < frame; ++i)
            for (std::size_t channel = 0; channel < channels; ++channel)
                frameInput[channel * frame + i] = workerScratch[i * channels + channel];
        const auto start = std::chrono::steady_clock::now();
        runFrame();
        if (! timings.empty())
        {
            const auto written = timingsWritten.load (std::memory_order_relaxed);
            timings[written % timings.size()] = secondsSince (start);
            timingsWritten.store (written + 1, std::memory_order_release);
        }
        for (std::size_t i = 0; i < frame; ++i)
            for (std::size_t channel = 0; channel < channels; ++channel)
                workerScratch[i * channels + channel] = frameOutput[channel * frame + i];
        if (! fromWorker.write (workerScratch.data(), frameSamples))
            overruns.fetch_add (frame, std::memory_order_relaxed);
    }
}

StreamingStats StreamingModel::stats() const noexcept
{
    StreamingStats result;
    result.framesRun = framesRun.load();
    result.failedRuns = failedRuns.load();
    result.underrunSamples = underruns.load();
    result.overrunSamples = overruns.load();
    result.measuredInferenceSeconds = measuredSeconds;
    result.runBudgetSeconds = isDecoupled ? runBudget : 0.0;
    return result;
}

std::vector<double> StreamingModel::inferenceTimes() const
{
    const auto written = timingsWritten.load (std::memory_order_acquire);
    std::vector<double> ordered;
    if (timings.empty())
        return ordered;
    const auto kept = std::min<std::size_t> (written, timings.size());
    for (std::size_t i = written - kept; i < written; ++i)
        ordered.push_back (timings[i % timings.size()]);
    return ordered;
}

} // namespace elkrt
