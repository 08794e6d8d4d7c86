#include "elkrt/resampling_model.h"

#include <samplerate.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace elkrt
{

namespace
{

int converterType (ResampleQuality quality)
{
    switch (quality)
    {
        case ResampleQuality::Fastest: return SRC_SINC_FASTEST;
        case ResampleQuality::Best: return SRC_SINC_BEST_QUALITY;
        case ResampleQuality::Medium: break;
    }
    return SRC_SINC_MEDIUM_QUALITY;
}

// One call of a converter over `count` samples; the samples it gave.
std::size_t convert (SRC_STATE* state, double ratio, const float* input, std::size_t count,
                     float* output, std::size_t capacity, bool& tookAll) noexcept
{
    SRC_DATA data {};
    data.data_in = input;
    data.input_frames = static_cast<long> (count);
    data.data_out = output;
    data.output_frames = static_cast<long> (capacity);
    data.end_of_input = 0;
    data.src_ratio = ratio;
    const bool ok = src_process (state, &data) == 0;
    tookAll = ok && data.input_frames_used == static_cast<long> (count);
    return ok ? static_cast<std::size_t> (data.output_frames_gen) : 0;
}

} // namespace

bool parseResampleQuality (const std::string& text, ResampleQuality& quality)
{
    if (text == "fastest")
        quality = ResampleQuality::Fastest;
    else if (text == "medium")
        quality = ResampleQuality::Medium;
    else if (text == "best")
        quality = ResampleQuality::Best;
    else
        return false;
    return true;
}

ResamplingModel::ResamplingModel (std::unique_ptr<StreamingModel> model, ResampleQuality converterQuality)
    : streaming (std::move (model)), quality (converterQuality)
{
}

ResamplingModel::~ResamplingModel() { freeConverters(); }

void ResamplingModel::freeConverters()
{
    for (auto* state : down)
        if (state != nullptr)
            src_delete (state);
    for (auto* state : up)
        if (state != nullptr)
            src_delete (state);
    down.clear();
    up.clear();
}

bool ResamplingModel::makeConverters (std::string& error)
{
    for (std::size_t c = 0; c < channels; ++c)
    {
        int failure = 0;
        down.push_back (src_new (converterType (quality), 1, &failure));
        up.push_back (src_new (converterType (quality), 1, &failure));
        if (down.back() == nullptr || up.back() == nullptr)
        {
            error = std::string ("libsamplerate could not make a converter: ") + src_strerror (failure);
            freeConverters();
            return false;
        }
    }
    return true;
}

void ResamplingModel::resetConverters() noexcept
{
    for (auto* state : down)
        src_reset (state);
    for (auto* state : up)
        src_reset (state);
}

bool ResamplingModel::prepare (const StreamingConfig& config, std::string& error)
{
    const double hostRate = config.hostSampleRate, modelRate = streaming->modelSampleRate();
    isConverting = modelRate > 0.0 && std::abs (modelRate - hostRate) > 1e-6;
    freeConverters();
    if (! isConverting)
    {
        if (! streaming->prepare (config, error))
            return false;
        latency = streaming->latencySamples();
        lookAhead = 0;
        return true;
    }
    const auto hostWhole = std::llround (hostRate), modelWhole = std::llround (modelRate);
    if (std::abs (hostRate - static_cast<double> (hostWhole)) > 1e-9 || std::abs (modelRate - static_cast<double> (modelWhole)) > 1e-9
        || hostWhole < 1 || modelWhole < 1 || std::max (hostWhole, modelWhole) > 256 * std::min (hostWhole, modelWhole))
    {
        error = "cannot convert between " + std::to_string (hostRate) + " Hz (host) and " + std::to_string (modelRate)
              + " Hz (model): both must be whole numbers of Hz within a factor of 256";
        return false;
    }
    toModel = modelRate / hostRate;
    toHost = hostRate / modelRate;
    channels = static_cast<std::size_t> (std::max (1, config.hostChannels));
    maxHostBlock = static_cast<std::size_t> (std::max (1, config.maxHostBlock));
    if (! makeConverters (error))
        return false;

    // A dry run over silence: the converters give counts that depend on their
    // positions only, never on the signal, so this shows the largest model-rate block
    // the model will see and how far the output falls behind the host's reads.
    const std::size_t modelCapacity = static_cast<std::size_t> (std::ceil (static_cast<double> (maxHostBlock) * toModel)) + 16;
    const std::size_t hostCapacity = static_cast<std::size_t> (std::ceil (static_cast<double> (modelCapacity) * toHost)) + 16;
    modelIn.assign (channels, std::vector<float> (modelCapacity, 0.0f));
    modelOut.assign (channels, std::vector<float> (modelCapacity, 0.0f));
    hostOut.assign (channels, std::vector<float> (hostCapacity, 0.0f));
    const std::vector<float> silence (maxHostBlock, 0.0f);
    maxModelBlock = 1;
    int64_t behind = 0, worst = 0;
    const auto blocks = static_cast<std::size_t> (std::ceil (2.0 * hostRate / static_cast<double> (maxHostBlock))) + 64;
    for (std::size_t b = 0; b < blocks; ++b)
    {
        bool tookAll = true, alsoAll = true;
        const auto given = convert (down[0], toModel, silence.data(), maxHostBlock, modelIn[0].data(), modelCapacity, tookAll);
        const auto back = convert (up[0], toHost, modelIn[0].data(), given, hostOut[0].data(), hostCapacity, alsoAll);
        if (! tookAll || ! alsoAll)
        {
            error = "libsamplerate did not take a whole block in the dry run";
            return false;
        }
        maxModelBlock = std::max (maxModelBlock, given);
        behind += static_cast<int64_t> (maxHostBlock) - static_cast<int64_t> (back);
        worst = std::max (worst, behind);
    }
    lookAhead = static_cast<std::size_t> (worst);

    StreamingConfig modelConfig = config;
    modelConfig.hostSampleRate = modelRate;
    modelConfig.maxHostBlock = static_cast<int> (maxModelBlock);
    modelConfig.fixedHostBlock = false; // the converter's blocks vary by a sample
    if (! streaming->prepare (modelConfig, error))
        return false;

    // The model's delay as a whole number of host samples: model samples in steps of
    // modelRate / gcd, each exactly hostRate / gcd host samples.
    const auto divisor = std::gcd (hostWhole, modelWhole);
    const int64_t step = modelWhole / divisor, hostStep = hostWhole / divisor;
    const int64_t modelLatency = streaming->latencySamples();
    const int64_t steps = (modelLatency + step - 1) / step;
    modelPadding = static_cast<std::size_t> (steps * step - modelLatency);
    latency = static_cast<int64_t> (lookAhead) + steps * hostStep;

    padding.assign (channels, FrameFifo());
    for (auto& fifo : padding)
        fifo.allocate (modelPadding + 2 * modelCapacity);
    delivered.assign (channels, FrameFifo());
    for (auto& fifo : delivered)
        fifo.allocate (lookAhead + 2 * hostCapacity + maxHostBlock);
    modelInPointers.assign (channels, nullptr);
    modelOutPointers.assign (channels, nullptr);
    for (std::size_t c = 0; c < channels; ++c)
    {
        modelInPointers[c] = modelIn[c].data();
        modelOutPointers[c] = modelOut[c].data();
    }
    resetConversion(); // the model was reset by its own prepare()
    return true;
}

void ResamplingModel::reset()
{
    streaming->reset();
    if (isConverting)
        resetConversion();
}

void ResamplingModel::resetConversion() noexcept
{
    resetConverters();
    for (auto& fifo : padding)
    {
        fifo.clear();
        fifo.pushZeros (modelPadding);
    }
    for (auto& fifo : delivered)
    {
        fifo.clear();
        fifo.pushZeros (lookAhead);
    }
    underruns = owed = 0;
}

void ResamplingModel::process (const float* const* input, float* const* output, int numSamples) noexcept
{
    if (! isConverting)
    {
        streaming->process (input, output, numSamples);
        return;
    }
    std::size_t done = 0;
    const auto total = static_cast<std::size_t> (std::max (0, numSamples));
    while (done < total)
    {
        const std::size_t count = std::min (maxHostBlock, total - done);
        const float* in[StreamingModel::maxChannels];
        float* out[StreamingModel::maxChannels];
        for (std::size_t c = 0; c < channels; ++c)
        {
            in[c] = input[c] + done;
            out[c] = output[c] + done;
        }
        processPart (in, out, count);
        done += count;
    }
}

void ResamplingModel::processPart (const float* const* input, float* const* output, std::size_t count) noexcept
{
    // Every channel's input is read before any output is written: they may be the same buffers.
    std::size_t given = 0;
    for (std::size_t c = 0; c < channels; ++c)
    {
        bool tookAll = true;
        given = convert (down[c], toModel, input[c], count, modelIn[c].data(), modelIn[c].size(), tookAll);
    }
    if (given > 0)
        streaming->process (modelInPointers.data(), modelOutPointers.data(), static_cast<int> (given));
    std::size_t dropped = 0;
    for (std::size_t c = 0; c < channels; ++c)
    {
        padding[c].push (modelOut[c].data(), given);
        const auto ready = padding[c].pop (modelIn[c].data(), given);
        bool tookAll = true;
        const auto back = convert (up[c], toHost, modelIn[c].data(), ready, hostOut[c].data(), hostOut[c].size(), tookAll);
        // Samples owed after an underrun went out as zeros: they are dropped on arrival,
        // so the delay never drifts. Every channel's converter gives the same count.
        dropped = static_cast<std::size_t> (std::min<uint64_t> (owed, back));
        delivered[c].push (hostOut[c].data() + dropped, back - dropped);
    }
    owed -= dropped;
    std::size_t shortest = count;
    for (std::size_t c = 0; c < channels; ++c)
        shortest = std::min (shortest, delivered[c].pop (output[c], count));
    if (shortest < count)
    {
        for (std::size_t c = 0; c < channels; ++c)
            std::fill (output[c] + shortest, output[c] + count, 0.0f);
        underruns += count - shortest;
        owed += count - shortest;
    }
}

} // namespace elkrt
