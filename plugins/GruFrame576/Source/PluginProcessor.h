// GruFrame576: GRU over frames of 576 samples: packed state, int64 sample-rate constant, an extra level output (made by scripts/make_runtime_models.py)
#pragma once

#include <juce_audio_processors/juce_audio_processors.h>

#include "ModelSpec.h"

#include <elkrt/engine.h>
#include <elkrt/streaming_model.h>
#if defined(ELKBUILD_RESAMPLE_QUALITY)
#include <elkrt/resampling_model.h>
#endif

#include <array>
#include <memory>
#include <vector>

class GruFrame576AudioProcessor final : public juce::AudioProcessor
{
public:
    GruFrame576AudioProcessor();
    ~GruFrame576AudioProcessor() override;

    void prepareToPlay (double sampleRate, int maximumExpectedSamplesPerBlock) override;
    void releaseResources() override;
    void reset() override;
    bool isBusesLayoutSupported (const BusesLayout& layouts) const override;
    void processBlock (juce::AudioBuffer<float>&, juce::MidiBuffer&) override;
    using AudioProcessor::processBlock;

    // Headless: Sushi never shows an editor.
    juce::AudioProcessorEditor* createEditor() override { return nullptr; }
    bool hasEditor() const override { return false; }

    const juce::String getName() const override { return "GruFrame576"; }
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
    // Loads the model into a new engine (not real-time safe); nullptr with error set.
    static std::unique_ptr<elkrt::Engine> loadEngine (const elkrt::ShapeOverrides& shapes, std::string& error);
    // Why the model is not running (empty when it is), said once per prepareToPlay.
    std::string loadError;

    // Null until prepareToPlay has loaded and prepared the model: processBlock then
    // outputs silence, never the input unchanged.
#if defined(ELKBUILD_RESAMPLE_QUALITY)
    // plugin.yaml's resample: the model streams at its own rate, converted both ways.
    std::unique_ptr<elkrt::ResamplingModel> streaming;
#else
    std::unique_ptr<elkrt::StreamingModel> streaming;
#endif

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR (GruFrame576AudioProcessor)
};
