// OnsetClassifier: Classifies each onset into one of four classes, reported as MIDI notes
#pragma once

#include <juce_audio_processors/juce_audio_processors.h>

#include "ModelSpec.h"

#include <elkrt/engine.h>
#include <elkrt/spsc.h>

#include <atomic>
#include <thread>

#include <array>
#include <memory>
#include <vector>

class OnsetClassifierAudioProcessor final : public juce::AudioProcessor
{
public:
    OnsetClassifierAudioProcessor();
    ~OnsetClassifierAudioProcessor() override;

    void prepareToPlay (double sampleRate, int maximumExpectedSamplesPerBlock) override;
    void releaseResources() override;
    void reset() override;
    bool isBusesLayoutSupported (const BusesLayout& layouts) const override;
    void processBlock (juce::AudioBuffer<float>&, juce::MidiBuffer&) override;
    using AudioProcessor::processBlock;

    // Headless: Sushi never shows an editor.
    juce::AudioProcessorEditor* createEditor() override { return nullptr; }
    bool hasEditor() const override { return false; }

    const juce::String getName() const override { return "OnsetClassifier"; }
    bool acceptsMidi() const override { return false; }
    bool producesMidi() const override { return true; }
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

    std::unique_ptr<elkrt::Engine> engine;
    float* engineInput = nullptr;         // the engine's own input and output tensors
    const float* engineOutput = nullptr;

    struct Features
    {
        std::array<float, elkbuild::model::features> values {};
        int64_t onsetSample = 0; // the onset, or (log-mel) the sample after the window
    };
    struct Result
    {
        std::array<float, elkbuild::model::classes> probabilities {};
        int64_t onsetSample = 0;
    };

    void bindEngine();
    void startWorker();
    void stopWorker();
    void workerLoop();
    void detectOnsets (const float* mono, int numSamples);
    void emitDueResults (juce::MidiBuffer& midi, int numSamples);

    // Audio thread -> worker, worker -> audio thread.
    elkrt::SpscQueue<Features, 16> featureQueue;
    elkrt::SpscQueue<Result, 16> resultQueue;
    std::thread worker;
    std::atomic<bool> workerRunning { false };
    std::atomic<uint32_t> droppedOnsets { 0 };
    // Offline renders wait for every result they hand over (the same notes every run).
    std::atomic<int64_t> resultsMade { 0 };
    int64_t featuresSent = 0;

    // Onset detection and feature accumulation (audio thread only).
    float fastEnvelope = 0.0f, slowEnvelope = 0.0f;
    float fastCoefficient = 0.0f, slowCoefficient = 0.0f;
    int64_t samplesSeen = 0;
    int64_t lastOnset = -1;
    int windowSamples = 0, partSamples = 0, collected = 0;
    bool collecting = false;
    Features pending;
    std::array<double, elkbuild::model::features> energy {};

    // Latency compensation: audio is delayed by latencySamples, results are emitted
    // at onset + latencySamples in the output timeline.
    int latencySamples = 0;
    juce::AudioBuffer<float> delayLine;
    int delayWrite = 0;
    int noteOffCountdown = -1;
    int lastNote = -1;

    JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR (OnsetClassifierAudioProcessor)
};
