// WAV files for vst3host: reads 16-bit PCM and 32-bit float (plain or
// WAVE_FORMAT_EXTENSIBLE), writes 32-bit float. Audio is held one vector per channel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace wav
{

struct Audio
{
    int sampleRate = 0;
    std::vector<std::vector<float>> channels;

    std::size_t frames() const { return channels.empty() ? 0 : channels[0].size(); }
};

namespace detail
{
inline uint32_t u32 (const unsigned char* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t (p[3]) << 24); }
inline uint16_t u16 (const unsigned char* p) { return uint16_t (p[0] | (p[1] << 8)); }

inline void put32 (std::vector<unsigned char>& out, uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        out.push_back (static_cast<unsigned char> (v >> (8 * i)));
}

inline void put16 (std::vector<unsigned char>& out, uint16_t v)
{
    out.push_back (static_cast<unsigned char> (v));
    out.push_back (static_cast<unsigned char> (v >> 8));
}

inline void putTag (std::vector<unsigned char>& out, const char* tag) { out.insert (out.end(), tag, tag + 4); }
} // namespace detail

inline Audio read (const std::string& path)
{
    using namespace detail;
    std::FILE* f = std::fopen (path.c_str(), "rb");
    if (f == nullptr)
        throw std::runtime_error (path + ": cannot open the input WAV file");
    std::vector<unsigned char> bytes;
    unsigned char buffer[65536];
    for (std::size_t n; (n = std::fread (buffer, 1, sizeof (buffer), f)) > 0;)
        bytes.insert (bytes.end(), buffer, buffer + n);
    std::fclose (f);

    if (bytes.size() < 12 || std::memcmp (bytes.data(), "RIFF", 4) != 0 || std::memcmp (bytes.data() + 8, "WAVE", 4) != 0)
        throw std::runtime_error (path + ": not a RIFF/WAVE file; give a .wav file");

    int format = 0, channels = 0, bits = 0, rate = 0;
    const unsigned char* data = nullptr;
    std::size_t dataSize = 0;
    for (std::size_t pos = 12; pos + 8 <= bytes.size();)
    {
        const unsigned char* chunk = bytes.data() + pos;
        const std::size_t size = u32 (chunk + 4);
        const std::size_t available = std::min (size, bytes.size() - pos - 8);
        if (std::memcmp (chunk, "fmt ", 4) == 0 && available >= 16)
        {
            format = u16 (chunk + 8);
            channels = u16 (chunk + 10);
            rate = static_cast<int> (u32 (chunk + 12));
            bits = u16 (chunk + 22);
            // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the GUID.
            if (format == 0xFFFE && available >= 40)
                format = u16 (chunk + 8 + 24);
        }
        else if (std::memcmp (chunk, "data", 4) == 0)
        {
            data = chunk + 8;
            dataSize = available; // a truncated file yields what it holds
        }
        pos += 8 + size + (size & 1);
    }
    if (channels < 1 || rate <= 0)
        throw std::runtime_error (path + ": the WAV file has no valid fmt chunk");
    if (data == nullptr)
        throw std::runtime_error (path + ": the WAV file has no data chunk");
    const bool isFloat = format == 3 && bits == 32;
    const bool isInt16 = format == 1 && bits == 16;
    if (! isFloat && ! isInt16)
        throw std::runtime_error (path + ": WAV format " + std::to_string (format) + " with " + std::to_string (bits)
                                  + " bits is not supported; convert it to 32-bit float or 16-bit PCM");

    Audio audio;
    audio.sampleRate = rate;
    const std::size_t frameBytes = static_cast<std::size_t> (channels) * (bits / 8);
    const std::size_t frames = dataSize / frameBytes;
    audio.channels.assign (channels, std::vector<float> (frames));
    for (std::size_t i = 0; i < frames; ++i)
        for (int c = 0; c < channels; ++c)
        {
            const unsigned char* s = data + i * frameBytes + c * (bits / 8);
            if (isFloat)
            {
                const uint32_t raw = u32 (s);
                float value;
                std::memcpy (&value, &raw, sizeof (value));
                audio.channels[c][i] = value;
            }
            else
            {
                audio.channels[c][i] = static_cast<int16_t> (u16 (s)) / 32768.0f;
            }
        }
    return audio;
}

// Written next to the target and renamed over it, so no half-written file is left.
inline void writeFloat (const std::string& path, const Audio& audio)
{
    using namespace detail;
    const auto channels = static_cast<uint16_t> (audio.channels.size());
    const auto frames = static_cast<uint32_t> (audio.frames());
    const uint32_t dataSize = frames * channels * 4;
    std::vector<unsigned char> out;
    out.reserve (58 + dataSize);
    putTag (out, "RIFF");
    put32 (out, 4 + (8 + 18) + (8 + 4) + (8 + dataSize));
    putTag (out, "WAVE");
    putTag (out, "fmt ");
    put32 (out, 18);
    put16 (out, 3); // WAVE_FORMAT_IEEE_FLOAT
    put16 (out, channels);
    put32 (out, static_cast<uint32_t> (audio.sampleRate));
    put32 (out, static_cast<uint32_t> (audio.sampleRate) * channels * 4);
    put16 (out, static_cast<uint16_t> (channels * 4));
    put16 (out, 32);
    put16 (out, 0); // cbSize
    putTag (out, "fact");
    put32 (out, 4);
    put32 (out, frames);
    putTag (out, "data");
    put32 (out, dataSize);
    for (uint32_t i = 0; i < frames; ++i)
        for (uint16_t c = 0; c < channels; ++c)
        {
            uint32_t raw;
            std::memcpy (&raw, &audio.channels[c][i], sizeof (raw));
            put32 (out, raw);
        }

    const std::string partial = path + ".partial";
    std::FILE* f = std::fopen (partial.c_str(), "wb");
    if (f == nullptr)
        throw std::runtime_error (path + ": cannot write the output WAV file; check the folder exists");
    const bool ok = std::fwrite (out.data(), 1, out.size(), f) == out.size();
    if (std::fclose (f) != 0 || ! ok || std::rename (partial.c_str(), path.c_str()) != 0)
    {
        std::remove (partial.c_str());
        throw std::runtime_error (path + ": writing the output WAV file failed; check free space");
    }
}

} // namespace wav
