#include "PluginProcessor.h"

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <cmath>
#include <algorithm>
#include <cstdio>

OnsetClassifierAudioProcessor::OnsetClassifierAudioProcessor()
    : AudioProcessor (BusesProperties()
                          .withInput ("Input", juce::AudioChannelSet::stereo(), true)
                          .withOutput ("Output", juce::AudioChannelSet::stereo(), true))
{
}

OnsetClassifierAudioProcessor::~OnsetClassifierAudioProcessor()
{
    stopWorker();
}

juce::File OnsetClassifierAudioProcessor::modelFile()
{
    // The binary is <Name>.vst3/Contents/<arch>-linux/<Name>.so; the model travels in
    // <Name>.vst3/Contents/Resources (with its .onnx.data, if any), so the bundle can
    // be moved as one folder.
    return juce::File::getSpecialLocation (juce::File::currentExecutableFile)
        .getParentDirectory()
        .getParentDirectory()
        .getChildFile ("Resources")
        .getChildFile (elkbuild::model::file);
}

std::unique_ptr<elkrt::Engine> OnsetClassifierAudioProcessor::loadEngine (const elkrt::ShapeOverrides& shapes, std::string& error)
{
    // ELKBUILD_ENGINE_NAME comes from CMake (-DELKBUILD_ENGINE), like the runtime's engine.
    auto loaded = elkrt::makeEngine (ELKBUILD_ENGINE_NAME);
    if (loaded == nullptr)
    {
        error = std::string ("the runtime was built without the ") + ELKBUILD_ENGINE_NAME + " engine";
        return nullptr;
    }
    // The full path: ONNX Runtime finds external data (MODEL.onnx.data) beside it.
    if (! loaded->load (modelFile().getFullPathName().toStdString(), shapes, error))
        return nullptr;
    return loaded;
}

bool OnsetClassifierAudioProcessor::isBusesLayoutSupported (const BusesLayout& layouts) const
{
    const auto& in = layouts.getMainInputChannelSet();
    const auto& out = layouts.getMainOutputChannelSet();
    return in == out && (out == juce::AudioChannelSet::mono() || out == juce::AudioChannelSet::stereo());
}

void OnsetClassifierAudioProcessor::prepareToPlay (double sampleRate, int maximumExpectedSamplesPerBlock)
{
    stopWorker();
    loadError.clear();
    if (engine == nullptr)
        engine = loadEngine ({}, loadError);
    if (engine != nullptr)
        bindEngine();
    if (! loadError.empty())
    {
        engine.reset();
        std::fprintf (stderr, "OnsetClassifier: the model cannot run: %s\n", loadError.c_str());
    }
    // Suspended, the plugin refuses activation (elkbuild's JUCE patch makes setActive
    // return kResultFalse), so the host reports the failure instead of running it.
    suspendProcessing (engine == nullptr);

    constexpr int features = static_cast<int> (elkbuild::model::features);
    partSamples = std::max (1, static_cast<int> (std::lround (sampleRate * elkbuild::model::windowMs / 1000.0)) / features);
    windowSamples = partSamples * features;
    // Envelope followers: 1 ms attack for the fast one, 100 ms for the slow one.
    fastCoefficient = static_cast<float> (std::exp (-1.0 / (0.001 * sampleRate)));
    slowCoefficient = static_cast<float> (std::exp (-1.0 / (0.100 * sampleRate)));
    fastEnvelope = slowEnvelope = 0.0f;
    samplesSeen = 0;
    lastOnset = -1;
    collecting = false;
    featureQueue.clear();
    resultQueue.clear();
    resultsMade.store (0);
    featuresSent = 0;

    // Measure inference time here (the priming run is done): the reported latency is
    // window + ceil(max inference time / block) * block, as for decoupled inference.
    double slowest = 0.0;
    if (engine != nullptr)
    {
        std::fill (engineInput, engineInput + elkbuild::model::features, 0.0f);
        for (int i = 0; i < 8; ++i)
        {
            const auto begin = std::chrono::steady_clock::now();
            engine->run();
            slowest = std::max (slowest, std::chrono::duration<double> (std::chrono::steady_clock::now() - begin).count());
        }
    }
    const int block = std::max (1, maximumExpectedSamplesPerBlock);
    // Twice the slowest run plus the worker's polling period, as a margin.
    const auto inferenceSamples = static_cast<int> (std::ceil ((2.0 * slowest + 0.0005) * sampleRate));
    latencySamples = windowSamples + ((inferenceSamples + block - 1) / block) * block;
    setLatencySamples (latencySamples);

    delayLine.setSize (getTotalNumOutputChannels(), latencySamples + 1);
    delayLine.clear();
    delayWrite = 0;
    noteOffCountdown = -1;
    lastNote = -1;

    if (engine != nullptr)
        startWorker();
}

void OnsetClassifierAudioProcessor::bindEngine()
{
    // One float32 tensor of `features` in, one of `classes` out (checked by new-plugin;
    // checked again here in case the model file was swapped).
    if (engine->inputCount() != 1 || engine->outputCount() != 1)
    {
        loadError = "the model must have one input and one output";
        return;
    }
    auto& in = engine->input (0);
    const auto& out = engine->output (0);
    if (in.spec().type != elkrt::DType::Float32 || in.elementCount() != elkbuild::model::features
        || out.spec().type != elkrt::DType::Float32 || out.elementCount() != elkbuild::model::classes)
    {
        loadError = "input '" + in.spec().name + "' " + in.spec().shapeText() + " and output '" + out.spec().name
                    + "' " + out.spec().shapeText() + " are not the float32 features and classes ModelSpec.h names";
        return;
    }
    engineInput = in.as<float>();
    engineOutput = out.as<float>();
}

void OnsetClassifierAudioProcessor::releaseResources() { stopWorker(); }

void OnsetClassifierAudioProcessor::reset() {}

void OnsetClassifierAudioProcessor::startWorker()
{
    workerRunning.store (true);
    worker = std::thread ([this] { workerLoop(); });
    // High priority, below the audio thread's: results come back within the window.
    // Without the right to real-time scheduling the worker still runs, at normal priority.
    sched_param parameters {};
    parameters.sched_priority = std::max (1, sched_get_priority_max (SCHED_FIFO) / 2);
    pthread_setschedparam (worker.native_handle(), SCHED_FIFO, &parameters);
}

void OnsetClassifierAudioProcessor::stopWorker()
{
    workerRunning.store (false);
    if (worker.joinable())
        worker.join();
}

void OnsetClassifierAudioProcessor::workerLoop()
{
    Features features;
    Result result;
    while (workerRunning.load (std::memory_order_acquire))
    {
        if (featureQueue.pop (features))
        {
            std::copy (features.values.begin(), features.values.end(), engineInput);
            if (engine->run())
            {
                std::copy (engineOutput, engineOutput + elkbuild::model::classes, result.probabilities.begin());
                result.onsetSample = features.onsetSample;
                resultQueue.push (result);
            }
            resultsMade.fetch_add (1, std::memory_order_release);
            continue;
        }
        // The worker polls: waking it with a condition variable or semaphore would make
        // the audio thread call into the kernel (a mode switch under Xenomai/EVL).
        std::this_thread::sleep_for (std::chrono::microseconds (250));
    }
}

void OnsetClassifierAudioProcessor::detectOnsets (const float* mono, int numSamples)
{
    constexpr int features = static_cast<int> (elkbuild::model::features);
    for (int i = 0; i < numSamples; ++i, ++samplesSeen)
    {
        const float level = std::abs (mono[i]);
        fastEnvelope = level + fastCoefficient * (fastEnvelope - level);
        slowEnvelope = level + slowCoefficient * (slowEnvelope - level);

        if (collecting)
        {
            energy[static_cast<size_t> (collected / partSamples)] += static_cast<double> (mono[i]) * mono[i];
            if (++collected == windowSamples)
            {
                collecting = false;
                for (int f = 0; f < features; ++f)
                    pending.values[static_cast<size_t> (f)] =
                        static_cast<float> (std::log10 (energy[static_cast<size_t> (f)] / partSamples + 1.0e-10));
                if (featureQueue.push (pending))
                    ++featuresSent;
                else
                    droppedOnsets.fetch_add (1, std::memory_order_relaxed);
            }
            continue;
        }
        // An onset: the fast envelope jumps well above the slow one, above a floor,
        // and not within one window of the previous onset.
        const bool rising = fastEnvelope > 2.0f * slowEnvelope && fastEnvelope > 0.01f;
        if (rising && (lastOnset < 0 || samplesSeen - lastOnset >= windowSamples))
        {
            lastOnset = samplesSeen;
            collecting = true;
            collected = 0;
            energy.fill (0.0);
            pending.onsetSample = samplesSeen;
        }
    }
}


void OnsetClassifierAudioProcessor::emitDueResults (juce::MidiBuffer& midi, int numSamples)
{
    // Offline nothing waits on a clock: wait for the worker, so every result lands
    // where it is due (a real-time host never waits: a late result plays late).
    if (isNonRealtime())
        while (resultsMade.load (std::memory_order_acquire) < featuresSent)
            std::this_thread::sleep_for (std::chrono::microseconds (50));

    // Output sample t plays input sample t - latency: a result for an onset at input
    // sample s belongs at output sample s + latency.
    const int64_t blockStart = samplesSeen - numSamples;
    if (noteOffCountdown >= 0)
    {
        if (noteOffCountdown < numSamples)
        {
            midi.addEvent (juce::MidiMessage::noteOff (1, lastNote), noteOffCountdown);
            noteOffCountdown = -1;
        }
        else
        {
            noteOffCountdown -= numSamples;
        }
    }
    while (const Result* result = resultQueue.front())
    {
        const int64_t due = result->onsetSample + latencySamples;
        if (due >= blockStart + numSamples)
            break;
        const auto position = static_cast<int> (std::max<int64_t> (0, due - blockStart));
        const auto& p = result->probabilities;
        const auto best = static_cast<int> (std::max_element (p.begin(), p.end()) - p.begin());
        if (noteOffCountdown >= 0)
            midi.addEvent (juce::MidiMessage::noteOff (1, lastNote), position);
        lastNote = elkbuild::model::firstNote + best;
        midi.addEvent (juce::MidiMessage::noteOn (1, lastNote, juce::jlimit (0.01f, 1.0f, p[static_cast<size_t> (best)])), position);
        noteOffCountdown = windowSamples;
        Result done;
        resultQueue.pop (done);
    }
}

void OnsetClassifierAudioProcessor::processBlock (juce::AudioBuffer<float>& buffer, juce::MidiBuffer& midi)
{
    juce::ScopedNoDenormals noDenormals;
    midi.clear();
    const int numSamples = buffer.getNumSamples();
    if (engine == nullptr)
    {
        // The model did not load (said in prepareToPlay): silence, never the input unchanged.
        buffer.clear();
        return;
    }
    if (numSamples == 0)
        return;

    // Onsets are found on the first channel (a mono source is the usual case).
    detectOnsets (buffer.getReadPointer (0), numSamples);
    emitDueResults (midi, numSamples);

    // Delay the audio by the reported latency so it stays aligned with the notes.
    const int length = delayLine.getNumSamples();
    const int channels = std::min (buffer.getNumChannels(), delayLine.getNumChannels());
    for (int i = 0; i < numSamples; ++i)
    {
        const int read = (delayWrite + 1) % length;
        for (int channel = 0; channel < channels; ++channel)
        {
            float* samples = buffer.getWritePointer (channel);
            delayLine.setSample (channel, delayWrite, samples[i]);
            samples[i] = delayLine.getSample (channel, read);
        }
        delayWrite = read;
    }
}

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter()
{
    return new OnsetClassifierAudioProcessor();
}
