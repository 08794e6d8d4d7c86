#include "PluginProcessor.h"

#include <algorithm>
#include <cstdio>

WaveNetAmpAudioProcessor::WaveNetAmpAudioProcessor()
    : AudioProcessor (BusesProperties()
                          .withInput ("Input", juce::AudioChannelSet::stereo(), true)
                          .withOutput ("Output", juce::AudioChannelSet::stereo(), true))
{
}

WaveNetAmpAudioProcessor::~WaveNetAmpAudioProcessor()
{
}

juce::File WaveNetAmpAudioProcessor::modelFile()
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

std::unique_ptr<elkrt::Engine> WaveNetAmpAudioProcessor::loadEngine (const elkrt::ShapeOverrides& shapes, std::string& error)
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

bool WaveNetAmpAudioProcessor::isBusesLayoutSupported (const BusesLayout& layouts) const
{
    const auto& in = layouts.getMainInputChannelSet();
    const auto& out = layouts.getMainOutputChannelSet();
    return in == out && (out == juce::AudioChannelSet::mono() || out == juce::AudioChannelSet::stereo());
}

void WaveNetAmpAudioProcessor::prepareToPlay (double sampleRate, int maximumExpectedSamplesPerBlock)
{
    // Everything that allocates happens here, off the audio thread: model loading,
    // tensor allocation, a priming and measured inference, every streaming buffer.
    streaming.reset();
    loadError.clear();
    elkrt::ModelDescription description;
    std::string error;
    const auto roles = modelFile().getFullPathName() + elkbuild::model::rolesSuffix;
    if (! elkrt::ModelDescription::load (roles.toStdString(), description, error))
    {
        loadError = error;
    }
    else if (auto engine = loadEngine (description.shapeOverrides(), error))
    {
        elkrt::StreamingConfig config;
        config.hostChannels = std::max (1, getTotalNumOutputChannels());
        config.maxHostBlock = std::max (1, maximumExpectedSamplesPerBlock);
        // VST3 hosts may send any block up to the maximum (pedalboard and DAWs do; Sushi
        // does not): the latency then covers every remainder, so no block is ever late.
        config.fixedHostBlock = false;
        config.mode = elkrt::ExecutionMode::Automatic; // plugin.yaml's mode
        config.hostSampleRate = sampleRate;
        // The last runs' inference times, for the worker report rt-check judges.
        config.timingCapacity = 4096;
#if defined(ELKBUILD_RESAMPLE_QUALITY)
        // plugin.yaml's resample: at another host rate the model streams at its own, converted.
        elkrt::ResampleQuality quality = elkrt::ResampleQuality::Medium;
        elkrt::parseResampleQuality (ELKBUILD_RESAMPLE_QUALITY, quality);
        auto model = std::make_unique<elkrt::ResamplingModel> (
            std::make_unique<elkrt::StreamingModel> (std::move (engine), std::move (description)), quality);
#else
        auto model = std::make_unique<elkrt::StreamingModel> (std::move (engine), std::move (description));
#endif
        if (model->prepare (config, error))
            streaming = std::move (model);
        else
            loadError = error;
    }
    else
    {
        loadError = error;
    }
    if (! loadError.empty())
        std::fprintf (stderr, "WaveNetAmp: the model cannot run: %s\n", loadError.c_str());
    // Suspended, the plugin refuses activation (elkbuild's JUCE patch makes setActive
    // return kResultFalse), so the host reports the failure instead of running it.
    suspendProcessing (streaming == nullptr);
    // The host delays everything else by this much to stay aligned with our output.
    setLatencySamples (streaming != nullptr ? streaming->latencySamples() : 0);
}

void WaveNetAmpAudioProcessor::releaseResources() {}

void WaveNetAmpAudioProcessor::reset()
{
    if (streaming != nullptr)
        streaming->reset();
}

void WaveNetAmpAudioProcessor::processBlock (juce::AudioBuffer<float>& buffer, juce::MidiBuffer&)
{
    juce::ScopedNoDenormals noDenormals;
    if (streaming == nullptr)
    {
        // The model did not load (said in prepareToPlay): silence, so nobody mistakes
        // the input passing through for the model working.
        buffer.clear();
        return;
    }
    // An atomic store: offline renders wait for the worker and come out the same every run.
    streaming->setOffline (isNonRealtime());
    // In place: elkrt reads each block before it writes it.
    streaming->process (buffer.getArrayOfReadPointers(), buffer.getArrayOfWritePointers(), buffer.getNumSamples());
}

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter()
{
    return new WaveNetAmpAudioProcessor();
}
