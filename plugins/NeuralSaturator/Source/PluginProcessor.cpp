#include "PluginProcessor.h"

#include <algorithm>
#include <cstdio>

NeuralSaturatorAudioProcessor::NeuralSaturatorAudioProcessor()
    : AudioProcessor (BusesProperties()
                          .withInput ("Input", juce::AudioChannelSet::stereo(), true)
                          .withOutput ("Output", juce::AudioChannelSet::stereo(), true))
{
}

NeuralSaturatorAudioProcessor::~NeuralSaturatorAudioProcessor()
{
    if (engine != nullptr)
        engine->destroy();
}

juce::File NeuralSaturatorAudioProcessor::modelFile()
{
    // The binary is <Name>.vst3/Contents/<arch>-linux/<Name>.so; the model travels in
    // <Name>.vst3/Contents/Resources, so the bundle can be moved as one folder.
    return juce::File::getSpecialLocation (juce::File::currentExecutableFile)
        .getParentDirectory()
        .getParentDirectory()
        .getChildFile ("Resources")
        .getChildFile (elkbuild::model::file);
}

bool NeuralSaturatorAudioProcessor::startEngine()
{
    if (engine == nullptr)
        engine = elkbuild::makeEngine();
    std::string error;
    const auto path = modelFile().getFullPathName().toStdString();
    if (! engine->create (path, elkbuild::model::inputElements, elkbuild::model::outputElements, error))
    {
        // No exception may leave a host callback; the plugin passes audio through instead.
        std::fprintf (stderr, "NeuralSaturator: %s\n", error.c_str());
        return false;
    }
    return true;
}

bool NeuralSaturatorAudioProcessor::isBusesLayoutSupported (const BusesLayout& layouts) const
{
    const auto& in = layouts.getMainInputChannelSet();
    const auto& out = layouts.getMainOutputChannelSet();
    return in == out && (out == juce::AudioChannelSet::mono() || out == juce::AudioChannelSet::stereo());
}

void NeuralSaturatorAudioProcessor::prepareToPlay (double, int)
{
    // Everything that allocates happens here, off the audio thread: model loading,
    // tensor allocation and one priming inference (inside create()).
    if (! engineReady)
        engineReady = startEngine();
    setLatencySamples (0);
}

void NeuralSaturatorAudioProcessor::releaseResources() {}

void NeuralSaturatorAudioProcessor::processBlock (juce::AudioBuffer<float>& buffer, juce::MidiBuffer&)
{
    juce::ScopedNoDenormals noDenormals;
    if (! engineReady)
        return; // pass-through: the model could not be loaded (reported in prepareToPlay)

    constexpr auto frame = static_cast<int> (elkbuild::model::frameSamples);
    const int numSamples = buffer.getNumSamples();
    for (int channel = 0; channel < getTotalNumOutputChannels(); ++channel)
    {
        float* samples = buffer.getWritePointer (channel);
        for (int start = 0; start < numSamples; start += frame)
        {
            // A host block need not be a multiple of the model's frame: the last part
            // is zero-padded. Frames are independent, so this adds no latency.
            const int count = std::min (frame, numSamples - start);
            std::copy (samples + start, samples + start + count, inputFrame.begin());
            std::fill (inputFrame.begin() + count, inputFrame.end(), 0.0f);
            if (! engine->run (inputFrame.data(), outputFrame.data()))
                return;
            std::copy (outputFrame.begin(), outputFrame.begin() + count, samples + start);
        }
    }
}

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter()
{
    return new NeuralSaturatorAudioProcessor();
}
