// Log-mel features computed from the audio stream, for detectors and classifiers
// trained on them (onset, keyword, instrument models): the same numbers as
// librosa.feature.melspectrogram(center=False) followed by power_to_db (or a
// natural log with an offset, as torchaudio pipelines often use), frame by frame.
//
// Streaming: push() takes host blocks of any size; every `hop` samples a frame of
// the last `fftSize` samples is analysed (periodic Hann window, |FFT|^power, mel
// filterbank, log). All memory is allocated in the constructor; push() and
// analyse() allocate nothing and take no lock (real-time safe).
#pragma once

#include <complex>
#include <cstddef>
#include <string>
#include <vector>

namespace elkrt
{

enum class MelScale
{
    Slaney, // librosa's default (htk=False): linear below 1 kHz, logarithmic above
    Htk     // 2595 * log10(1 + f / 700)
};

enum class MelNorm
{
    Slaney, // each band divided by its width in Hz (equal area), librosa's default
    None
};

enum class FeatureLog
{
    Decibel, // 10 * log10(max(amin, S)), librosa.power_to_db(ref=1.0, top_db=None)
    Natural  // log(S + offset)
};

struct LogMelSettings
{
    double sampleRate = 16000.0;
    int fftSize = 512;  // a power of two
    int hop = 160;
    int melBands = 64;
    double minHz = 0.0;
    double maxHz = 0.0; // 0: half the sample rate
    double power = 2.0; // 1: magnitude, 2: power
    MelScale scale = MelScale::Slaney;
    MelNorm norm = MelNorm::Slaney;
    FeatureLog log = FeatureLog::Decibel;
    double floor = 1e-10; // amin for Decibel, the offset for Natural
};

// Why `settings` cannot be used ("" when they can), naming the field.
std::string logMelProblem (const LogMelSettings& settings);

class LogMelFrontEnd
{
public:
    // Precondition: logMelProblem(settings) is empty.
    explicit LogMelFrontEnd (const LogMelSettings& settings);

    const LogMelSettings& settings() const noexcept { return config; }
    int bands() const noexcept { return config.melBands; }

    // Feed samples. Each completed hop (once fftSize samples have been seen) writes
    // one frame of bands() values to `frames` (row after row); returns how many
    // frames were written, at most `maxFrames`: samples past that stay unread and
    // the count of samples consumed is stored in `consumed`.
    int push (const float* samples, int count, float* frames, int maxFrames, int& consumed) noexcept;

    // One frame of features from exactly fftSize samples (oldest first).
    void analyse (const float* window, float* features) noexcept;

    // Forget the past: the next frame comes fftSize samples after this.
    void reset() noexcept;

    // The mel filterbank, bands() rows of fftSize / 2 + 1 weights (for tests).
    std::vector<std::vector<double>> filterbank() const;

private:
    struct Band
    {
        int firstBin = 0;
        std::vector<double> weights;
    };

    void fft() noexcept;

    LogMelSettings config;
    std::vector<double> window;
    std::vector<Band> bandsTable;
    std::vector<std::complex<double>> spectrum, twiddles;
    std::vector<int> bitReversed;
    std::vector<double> bins;
    std::vector<float> history; // the last fftSize samples, a ring
    std::vector<float> unrolled; // the ring in time order, for analyse()
    int writeAt = 0;
    long long seen = 0;
    int sinceFrame = 0;
};

// The last `frames` feature frames, as a model trained on log-mel spectrograms sees
// them: [bands, frames], band after band, oldest frame first (librosa's layout, so
// one copy fills an input of shape [1, bands, frames] or [1, 1, bands, frames]).
// Allocates in the constructor only; push() and copyTo() are real-time safe.
class MelWindow
{
public:
    MelWindow (int bands, int frames);

    int bands() const noexcept { return bandCount; }
    int frames() const noexcept { return frameCount; }
    // How many frames were pushed since the last reset().
    long long pushed() const noexcept { return total; }
    bool full() const noexcept { return total >= frameCount; }

    void push (const float* frame) noexcept;
    // bands() * frames() values; frames not seen yet (before full()) are zeros.
    void copyTo (float* out) const noexcept;
    void reset() noexcept;

private:
    int bandCount, frameCount;
    std::vector<float> ring; // frames() rows of bands() values
    int next = 0;
    long long total = 0;
};

} // namespace elkrt
