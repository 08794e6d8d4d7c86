// NeuralSaturator: Mono saturation modelled by a small neural network
#pragma once

#include <juce_audio_processors/juce_audio_processors.h>

#include "InferenceEngine.h"
#include "ModelSpec.h"

#include <array>
#include <memory>
#include <vector>

class NeuralSaturatorAudioProcessor final : public juce::AudioProcessor
{
public:
    NeuralSaturatorAudioProcessor();
    ~NeuralSaturatorAudioProcessor() override;

    void prepareToPlay (double sampleRate, int maximumExpectedSamplesPerBlock) override;
    void releaseResources() override;
    bool isBusesLayoutSupported (const BusesLayout& layouts) const override;
    void processBlock (juce::AudioBuffer<float>&, juce::MidiBuffer&) override;
    using AudioProcessor::processBlock;

    // Headless: Sushi never shows an editor.
    juce::AudioProcessorEditor* createEditor() override { return nullptr; }
    bool hasEditor() const override { return false; }

    const juce::String getName() const override { return "NeuralSaturator"; }
    bool acceptsMidi() const override { return false; }
    bool producesMidi() const override { return false; }
    bool isMidiEffect() const override { return false; }
    double getTailLengthSeconds() const override { return 0.0; }

    int getNumPrograms() override { return 1; }
    int getCurrentProgram() override { return 0; }
    void setCurrentProgram (int) override {}
    const juce::String getProgramName (int) override { return {}; }
    void changeProgramName (int, const juce::String&) override {}

    void getStateInformation (juce::MemoryBlock&) override {}
    void setStateInformation (const void*, int) override {}

private:
    static juce::File modelFile();
    bool startEngine();

    std::unique_ptr<elkbuild::InferenceEngine> engine;
    bool engineReady = false;
    std::array<float, elkbuild::model::frameSamples> inputFrame {};
    std::array<float, elkbuild::model::outputElements> outputFrame {};

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR (NeuralSaturatorAudioProcessor)
};
