// vst3host: a minimal VST3 host for testing plugins built by elkbuild.
//
//   vst3host info BUNDLE
//   vst3host process [BUNDLE] [--plugin BUNDLE]... --in IN.wav --out OUT.wav [--block N] [--rate R]
//   vst3host rtcheck BUNDLE [--blocks N] [--warmup N] [--block N] [--rate R]
//
// Written against the VST3 SDK's pluginterfaces headers only (no SDK hosting
// classes), so it cross-compiles with nothing but libc/libstdc++. Each command prints
// one JSON object on stdout; an error is one line on stderr and a non-zero exit
// (2 for a wrong command line).
//
// Channels: a plugin is asked to take the WAV file's channel count on its main buses
// (setBusArrangements). A plugin that refuses (a mono-only plugin fed a stereo file)
// is an error naming the plugin and the channel count it wants; files are never
// split or down-mixed behind the user's back.
#define INIT_CLASS_IID // this translation unit defines the interface IDs it uses
#include "pluginterfaces/base/funknown.h"
#include "pluginterfaces/base/ipluginbase.h"
#include "pluginterfaces/vst/ivstaudioprocessor.h"
#include "pluginterfaces/vst/ivstcomponent.h"
#include "pluginterfaces/vst/ivsteditcontroller.h"
#include "pluginterfaces/vst/ivstevents.h"
#include "pluginterfaces/vst/ivsthostapplication.h"
#include "pluginterfaces/vst/ivstprocesscontext.h"
#include "pluginterfaces/vst/vstspeaker.h"

#include "rt_interpose.h"
#include "wav_io.h"

#include <cxxabi.h>
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace Steinberg;

namespace
{

#if defined(__aarch64__)
constexpr const char* kArch = "aarch64-linux";
#elif defined(__x86_64__)
constexpr const char* kArch = "x86_64-linux";
#elif defined(__arm__)
constexpr const char* kArch = "armv7l-linux";
#else
#error "unknown target architecture"
#endif

struct HostError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

struct UsageError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

// ---- small helpers -------------------------------------------------------------

std::string fromString128 (const Vst::String128 text)
{
    std::string out;
    for (int i = 0; i < 128 && text[i] != 0; ++i)
        out += text[i] < 128 ? static_cast<char> (text[i]) : '?';
    return out;
}

std::string fromChars (const char* text, std::size_t max)
{
    return std::string (text, strnlen (text, max));
}

std::string hexId (const TUID id)
{
    static const char* digits = "0123456789ABCDEF";
    std::string out;
    for (int i = 0; i < 16; ++i)
    {
        const auto byte = static_cast<unsigned char> (id[i]);
        out += digits[byte >> 4];
        out += digits[byte & 15];
    }
    return out;
}

bool isDirectory (const std::string& path)
{
    struct stat st {};
    return stat (path.c_str(), &st) == 0 && S_ISDIR (st.st_mode);
}

bool isFile (const std::string& path)
{
    struct stat st {};
    return stat (path.c_str(), &st) == 0 && S_ISREG (st.st_mode);
}

std::vector<std::string> listDir (const std::string& path)
{
    std::vector<std::string> names;
    if (DIR* dir = opendir (path.c_str()))
    {
        while (dirent* entry = readdir (dir))
            if (entry->d_name[0] != '.')
                names.emplace_back (entry->d_name);
        closedir (dir);
    }
    std::sort (names.begin(), names.end());
    return names;
}

// One JSON object, written field by field; enough for this tool's output.
class Json
{
public:
    static std::string quote (const std::string& s)
    {
        std::string out = "\"";
        for (char c : s)
        {
            switch (c)
            {
                case '"': out += "\\\""; break;
                case '\\': out += "\\\\"; break;
                case '\n': out += "\\n"; break;
                case '\t': out += "\\t"; break;
                default:
                    if (static_cast<unsigned char> (c) < 0x20)
                    {
                        char buf[8];
                        std::snprintf (buf, sizeof (buf), "\\u%04x", c);
                        out += buf;
                    }
                    else
                        out += c;
            }
        }
        return out + "\"";
    }

    static std::string number (double v)
    {
        if (! std::isfinite (v))
            return "null";
        std::ostringstream s;
        s.precision (12);
        s << v;
        return s.str();
    }

    Json& raw (const std::string& key, const std::string& value)
    {
        fields.push_back (quote (key) + ": " + value);
        return *this;
    }
    Json& str (const std::string& key, const std::string& value) { return raw (key, quote (value)); }
    Json& num (const std::string& key, double value) { return raw (key, number (value)); }
    Json& integer (const std::string& key, long long value) { return raw (key, std::to_string (value)); }
    Json& boolean (const std::string& key, bool value) { return raw (key, value ? "true" : "false"); }

    std::string text() const
    {
        std::string out = "{";
        for (std::size_t i = 0; i < fields.size(); ++i)
            out += (i ? ", " : "") + fields[i];
        return out + "}";
    }

    static std::string array (const std::vector<std::string>& items)
    {
        std::string out = "[";
        for (std::size_t i = 0; i < items.size(); ++i)
            out += (i ? ", " : "") + items[i];
        return out + "]";
    }

private:
    std::vector<std::string> fields;
};

// ---- the host side of the VST3 conversation -------------------------------------

// The context plugins get in initialize(): a name and nothing else. Lives as long as
// the process, so reference counting is a no-op.
class HostApplication final : public Vst::IHostApplication
{
public:
    tresult PLUGIN_API getName (Vst::String128 name) override
    {
        const char* text = "elkbuild vst3host";
        int i = 0;
        for (; text[i] != 0 && i < 127; ++i)
            name[i] = static_cast<Vst::TChar> (text[i]);
        name[i] = 0;
        return kResultOk;
    }

    tresult PLUGIN_API createInstance (TUID, TUID, void** obj) override
    {
        *obj = nullptr;
        return kNotImplemented; // no host-side IMessage/IAttributeList: nothing is connected
    }

    tresult PLUGIN_API queryInterface (const TUID iid, void** obj) override
    {
        if (FUnknownPrivate::iidEqual (iid, FUnknown::iid) || FUnknownPrivate::iidEqual (iid, Vst::IHostApplication::iid))
        {
            *obj = static_cast<Vst::IHostApplication*> (this);
            return kResultOk;
        }
        *obj = nullptr;
        return kNoInterface;
    }

    uint32 PLUGIN_API addRef() override { return 1; }
    uint32 PLUGIN_API release() override { return 1; }
};

HostApplication hostApplication;

// The events a plugin sends back from process() (its MIDI out): a fixed capacity, so
// handing it to process() allocates nothing. Owned by one Plugin; no reference counting.
class EventList final : public Vst::IEventList
{
public:
    static constexpr int capacity = 1024;

    int32 PLUGIN_API getEventCount() override { return count; }
    tresult PLUGIN_API getEvent (int32 index, Vst::Event& e) override
    {
        if (index < 0 || index >= count)
            return kInvalidArgument;
        e = events[static_cast<std::size_t> (index)];
        return kResultOk;
    }
    tresult PLUGIN_API addEvent (Vst::Event& e) override
    {
        if (count == capacity)
            return kResultFalse;
        events[static_cast<std::size_t> (count++)] = e;
        return kResultOk;
    }
    void clear() { count = 0; }

    tresult PLUGIN_API queryInterface (const TUID iid, void** obj) override
    {
        if (FUnknownPrivate::iidEqual (iid, FUnknown::iid) || FUnknownPrivate::iidEqual (iid, Vst::IEventList::iid))
        {
            *obj = static_cast<Vst::IEventList*> (this);
            return kResultOk;
        }
        *obj = nullptr;
        return kNoInterface;
    }
    uint32 PLUGIN_API addRef() override { return 1; }
    uint32 PLUGIN_API release() override { return 1; }

private:
    std::array<Vst::Event, capacity> events {};
    int32 count = 0;
};

// A loaded plugin binary: dlopen + ModuleEntry, released with ModuleExit + dlclose.
// Shared by every instance created from the same binary (a chain may repeat one).
class Module
{
public:
    static std::shared_ptr<Module> open (const std::string& bundle)
    {
        static std::map<std::string, std::weak_ptr<Module>> loaded;
        const std::string binary = binaryPath (bundle);
        if (auto existing = loaded[binary].lock())
            return existing;
        auto module = std::shared_ptr<Module> (new Module (bundle, binary));
        loaded[binary] = module;
        return module;
    }

    ~Module()
    {
        if (factory != nullptr)
            factory->release();
        if (exitModule != nullptr)
            exitModule();
        dlclose (handle);
    }

    Module (const Module&) = delete;
    Module& operator= (const Module&) = delete;

    IPluginFactory* factory = nullptr;
    const std::string bundle;

    // What an elkbuild plugin says about its decoupled models' workers (JSON, see
    // runtime/include/elkrt/worker_report.h); "null" for a plugin without elkrt.
    std::string workerReport() const
    {
        using ReportFn = int (*) (char*, int);
        auto report = reinterpret_cast<ReportFn> (dlsym (handle, "elkrt_worker_report"));
        if (report == nullptr)
            return "null";
        std::string text (512, '\0');
        text.resize (static_cast<std::size_t> (std::max (0, report (text.data(), static_cast<int> (text.size())))));
        return text;
    }

private:
    using EntryFn = bool (*) (void*);
    using ExitFn = bool (*)();
    using FactoryFn = IPluginFactory* (*)();

    Module (const std::string& bundlePath, const std::string& binary) : bundle (bundlePath)
    {
        handle = dlopen (binary.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle == nullptr)
            throw HostError (binary + ": dlopen failed: " + dlerror());
        // Linux VST3 modules must get ModuleEntry before anything else.
        auto entry = reinterpret_cast<EntryFn> (dlsym (handle, "ModuleEntry"));
        exitModule = reinterpret_cast<ExitFn> (dlsym (handle, "ModuleExit"));
        if (entry == nullptr || exitModule == nullptr)
        {
            exitModule = nullptr;
            dlclose (handle);
            throw HostError (binary + ": exports no ModuleEntry/ModuleExit; a Linux VST3 plugin must (rebuild it with the VST3 SDK or JUCE)");
        }
        if (! entry (handle))
        {
            exitModule = nullptr;
            dlclose (handle);
            throw HostError (binary + ": ModuleEntry returned false; the plugin refused to load");
        }
        auto getFactory = reinterpret_cast<FactoryFn> (dlsym (handle, "GetPluginFactory"));
        if (getFactory == nullptr || (factory = getFactory()) == nullptr)
        {
            exitModule();
            exitModule = nullptr;
            dlclose (handle);
            throw HostError (binary + ": plugin factory missing (no GetPluginFactory or it returned null); is this a VST3 plugin?");
        }
    }

    static std::string binaryPath (std::string bundle)
    {
        while (bundle.size() > 1 && bundle.back() == '/')
            bundle.pop_back();
        if (! isDirectory (bundle))
            throw HostError (bundle + ": no such VST3 bundle; give the path of a <Name>.vst3 folder");
        std::string name = bundle.substr (bundle.find_last_of ('/') + 1);
        if (name.size() > 5 && name.compare (name.size() - 5, 5, ".vst3") == 0)
            name.resize (name.size() - 5);
        const std::string binary = bundle + "/Contents/" + kArch + "/" + name + ".so";
        if (! isFile (binary))
        {
            std::string found;
            for (const auto& entry : listDir (bundle + "/Contents"))
                if (entry.size() > 6 && entry.compare (entry.size() - 6, 6, "-linux") == 0)
                    found += (found.empty() ? "" : ", ") + entry;
            throw HostError (bundle + ": no binary for this host at Contents/" + kArch + "/" + name + ".so (found: "
                             + (found.empty() ? "no <arch>-linux folder" : found) + "); build the plugin for " + kArch);
        }
        return binary;
    }

    void* handle = nullptr;
    ExitFn exitModule = nullptr;
};

struct BusDescription
{
    std::string name;
    int channels = 0;
    bool main = false;
    bool defaultActive = false;
};

// One plugin instance, from createInstance to terminate.
class Plugin
{
public:
    explicit Plugin (const std::string& bundlePath) : module (Module::open (bundlePath))
    {
        IPluginFactory* factory = module->factory;
        PFactoryInfo factoryInfo {};
        if (factory->getFactoryInfo (&factoryInfo) == kResultOk)
            vendor = fromChars (factoryInfo.vendor, sizeof (factoryInfo.vendor));

        int index = -1;
        PClassInfo info {};
        for (int32 i = 0; i < factory->countClasses(); ++i)
            if (factory->getClassInfo (i, &info) == kResultOk
                && fromChars (info.category, sizeof (info.category)) == kVstAudioEffectClass)
            {
                index = i;
                break;
            }
        if (index < 0)
            throw HostError (module->bundle + ": the factory has no class of category \"" kVstAudioEffectClass
                             "\"; it holds no audio processor");
        name = fromChars (info.name, sizeof (info.name));
        classId = hexId (info.cid);

        // IPluginFactory2 gives the class's own vendor and version, when it has them.
        IPluginFactory2* factory2 = nullptr;
        if (factory->queryInterface (IPluginFactory2::iid, reinterpret_cast<void**> (&factory2)) == kResultOk && factory2)
        {
            PClassInfo2 info2 {};
            if (factory2->getClassInfo2 (index, &info2) == kResultOk)
            {
                if (info2.vendor[0] != 0)
                    vendor = fromChars (info2.vendor, sizeof (info2.vendor));
                version = fromChars (info2.version, sizeof (info2.version));
                subCategories = fromChars (info2.subCategories, sizeof (info2.subCategories));
                sdkVersion = fromChars (info2.sdkVersion, sizeof (info2.sdkVersion));
            }
            factory2->release();
        }

        if (factory->createInstance (info.cid, Vst::IComponent::iid, reinterpret_cast<void**> (&component)) != kResultOk
            || component == nullptr)
            throw HostError (module->bundle + ": createInstance of " + name + " as IComponent failed");
        if (component->initialize (&hostApplication) != kResultOk)
        {
            component->release();
            component = nullptr;
            throw HostError (module->bundle + ": IComponent::initialize of " + name + " failed");
        }
        if (component->queryInterface (Vst::IAudioProcessor::iid, reinterpret_cast<void**> (&processor)) != kResultOk
            || processor == nullptr)
            throw HostError (module->bundle + ": " + name + " has no IAudioProcessor; it cannot process audio");

        // The edit controller is either the component itself or a class of its own.
        if (component->queryInterface (Vst::IEditController::iid, reinterpret_cast<void**> (&controller)) != kResultOk)
        {
            controller = nullptr;
            TUID controllerId {};
            if (component->getControllerClassId (controllerId) == kResultOk
                && factory->createInstance (controllerId, Vst::IEditController::iid, reinterpret_cast<void**> (&controller)) == kResultOk
                && controller != nullptr)
            {
                if (controller->initialize (&hostApplication) == kResultOk)
                    controllerIsSeparate = true;
                else
                {
                    controller->release();
                    controller = nullptr;
                }
            }
        }
    }

    ~Plugin()
    {
        if (processing)
            processor->setProcessing (false);
        if (active)
            component->setActive (false);
        if (controller != nullptr)
        {
            if (controllerIsSeparate)
                controller->terminate();
            controller->release();
        }
        if (processor != nullptr)
            processor->release();
        if (component != nullptr)
        {
            component->terminate();
            component->release();
        }
    }

    Plugin (const Plugin&) = delete;
    Plugin& operator= (const Plugin&) = delete;

    std::vector<BusDescription> audioBuses (Vst::BusDirection direction) const
    {
        std::vector<BusDescription> buses;
        for (int32 i = 0; i < component->getBusCount (Vst::kAudio, direction); ++i)
        {
            Vst::BusInfo bus {};
            if (component->getBusInfo (Vst::kAudio, direction, i, bus) != kResultOk)
                continue;
            buses.push_back ({ fromString128 (bus.name), bus.channelCount, bus.busType == Vst::kMain,
                               (bus.flags & Vst::BusInfo::kDefaultActive) != 0 });
        }
        return buses;
    }

    // Buses, setupProcessing and setActive(true). wantChannels 0 keeps the plugin's
    // own main-bus layout. A file render is offline (kOffline): a plugin that
    // infers on a worker then waits for it, so the output is the same every run;
    // rtcheck is realtime, as Sushi is.
    void configure (int wantChannels, int maxBlock, double rate, int32 mode = Vst::kRealtime)
    {
        processMode = mode;
        if (wantChannels > 0)
            requestChannels (wantChannels);
        inputs = audioBuses (Vst::kInput);
        outputs = audioBuses (Vst::kOutput);
        if (outputs.empty())
            throw HostError (module->bundle + ": " + name + " has no audio output bus");
        // Only the main buses carry audio; the others get silent buffers.
        for (int32 i = 0; i < static_cast<int32> (inputs.size()); ++i)
            component->activateBus (Vst::kAudio, Vst::kInput, i, i == 0);
        for (int32 i = 0; i < static_cast<int32> (outputs.size()); ++i)
            component->activateBus (Vst::kAudio, Vst::kOutput, i, i == 0);

        if (processor->canProcessSampleSize (Vst::kSample32) != kResultOk)
            throw HostError (module->bundle + ": " + name + " cannot process 32-bit float samples");
        Vst::ProcessSetup setup { processMode, Vst::kSample32, maxBlock, rate };
        if (processor->setupProcessing (setup) != kResultOk)
            throw HostError (module->bundle + ": setupProcessing(" + std::to_string (maxBlock) + " samples, "
                             + Json::number (rate) + " Hz) was refused by " + name);
        // A plugin that sends MIDI (a classifier's notes) gets its event output on.
        for (int32 i = 0; i < component->getBusCount (Vst::kEvent, Vst::kOutput); ++i)
            component->activateBus (Vst::kEvent, Vst::kOutput, i, i == 0);
        if (component->setActive (true) != kResultOk)
            throw HostError (module->bundle + ": setActive(true) was refused by " + name
                             + " (a plugin refuses when it cannot run, e.g. its model did not load)");
        active = true;
        sampleRate = rate;
        allocateBuffers (maxBlock);
    }

    int mainInputChannels() const { return inputs.empty() ? 0 : inputs[0].channels; }
    int mainOutputChannels() const { return outputs[0].channels; }
    uint32 latency() const { return processor->getLatencySamples(); }

    // On the thread that will call process().
    void startProcessing()
    {
        // The result is ignored on purpose: many plugins return kNotImplemented.
        processor->setProcessing (true);
        processing = true;
    }

    void stopProcessing()
    {
        if (processing)
            processor->setProcessing (false);
        processing = false;
    }

    // Real-time safe: no allocation, only pointer and struct updates.
    tresult process (float* const* in, float* const* out, int32 samples)
    {
        if (! inBuses.empty())
            for (int c = 0; c < inBuses[0].numChannels; ++c)
                inBuses[0].channelBuffers32[c] = in[c];
        for (int c = 0; c < outBuses[0].numChannels; ++c)
            outBuses[0].channelBuffers32[c] = out[c];
        context.projectTimeSamples = position;
        outEvents.clear();
        data.numSamples = samples;
        position += samples;
        return processor->process (data);
    }

    std::shared_ptr<Module> module;
    std::string name, vendor, classId, version, subCategories, sdkVersion;

private:
    void requestChannels (int channels)
    {
        const Vst::SpeakerArrangement wanted = channels == 1 ? Vst::SpeakerArr::kMono : Vst::SpeakerArr::kStereo;
        std::vector<Vst::SpeakerArrangement> ins (component->getBusCount (Vst::kAudio, Vst::kInput));
        std::vector<Vst::SpeakerArrangement> outs (component->getBusCount (Vst::kAudio, Vst::kOutput));
        for (int32 i = 0; i < static_cast<int32> (ins.size()); ++i)
            processor->getBusArrangement (Vst::kInput, i, ins[i]);
        for (int32 i = 0; i < static_cast<int32> (outs.size()); ++i)
            processor->getBusArrangement (Vst::kOutput, i, outs[i]);
        if (! ins.empty())
            ins[0] = wanted;
        if (! outs.empty())
            outs[0] = wanted;
        // A refusal leaves the old layout; configure()'s callers check the result.
        processor->setBusArrangements (ins.data(), static_cast<int32> (ins.size()), outs.data(),
                                       static_cast<int32> (outs.size()));
    }

    void allocateBuffers (int maxBlock)
    {
        int total = 0;
        for (const auto& bus : inputs)
            total += bus.channels;
        for (const auto& bus : outputs)
            total += bus.channels;
        scratch.assign (static_cast<std::size_t> (total) * maxBlock, 0.0f);
        pointers.assign (total, nullptr);
        int next = 0;
        auto fill = [&] (const std::vector<BusDescription>& buses, std::vector<Vst::AudioBusBuffers>& out) {
            out.assign (buses.size(), Vst::AudioBusBuffers {});
            for (std::size_t b = 0; b < buses.size(); ++b)
            {
                out[b].numChannels = buses[b].channels;
                out[b].silenceFlags = 0;
                out[b].channelBuffers32 = pointers.data() + next;
                for (int c = 0; c < buses[b].channels; ++c, ++next)
                    pointers[next] = scratch.data() + static_cast<std::size_t> (next) * maxBlock;
            }
        };
        fill (inputs, inBuses);
        fill (outputs, outBuses);

        context = Vst::ProcessContext {};
        context.state = Vst::ProcessContext::kPlaying | Vst::ProcessContext::kTempoValid
                        | Vst::ProcessContext::kTimeSigValid;
        context.sampleRate = sampleRate;
        context.tempo = 120.0;
        context.timeSigNumerator = 4;
        context.timeSigDenominator = 4;

        data = Vst::ProcessData {};
        data.processMode = processMode;
        data.symbolicSampleSize = Vst::kSample32;
        data.numInputs = static_cast<int32> (inBuses.size());
        data.numOutputs = static_cast<int32> (outBuses.size());
        data.inputs = inBuses.empty() ? nullptr : inBuses.data();
        data.outputs = outBuses.data();
        data.processContext = &context;
        data.outputEvents = &outEvents;
    }

    Vst::IComponent* component = nullptr;
    Vst::IAudioProcessor* processor = nullptr;
    Vst::IEditController* controller = nullptr;
    bool controllerIsSeparate = false;
    bool active = false;
    bool processing = false;
    int32 processMode = Vst::kRealtime;
    double sampleRate = 0;
    std::vector<BusDescription> inputs, outputs;
    std::vector<float> scratch;
    std::vector<float*> pointers;
    std::vector<Vst::AudioBusBuffers> inBuses, outBuses;
    Vst::ProcessContext context {};
    Vst::ProcessData data {};
    EventList outEvents;
    int64 position = 0;

public:
    // The events of the last process() call.
    EventList& events() { return outEvents; }
};

// ---- commands -----------------------------------------------------------------

std::string busesJson (const std::vector<BusDescription>& buses)
{
    std::vector<std::string> items;
    for (const auto& bus : buses)
        items.push_back (Json().str ("name", bus.name).integer ("channels", bus.channels).boolean ("main", bus.main)
                             .boolean ("default_active", bus.defaultActive).text());
    return Json::array (items);
}

int commandInfo (const std::string& bundle)
{
    Plugin plugin (bundle);
    const auto inputs = plugin.audioBuses (Vst::kInput);
    const auto outputs = plugin.audioBuses (Vst::kOutput);
    // Latency is only known once the plugin is prepared (JUCE sets it in prepareToPlay).
    plugin.configure (0, 512, 48000.0);
    Json out;
    out.str ("bundle", bundle).str ("name", plugin.name).str ("vendor", plugin.vendor).str ("class_id", plugin.classId)
        .str ("version", plugin.version).str ("sub_categories", plugin.subCategories).str ("sdk_version", plugin.sdkVersion)
        .str ("arch", kArch).raw ("inputs", busesJson (inputs)).raw ("outputs", busesJson (outputs))
        .integer ("main_input_channels", inputs.empty() ? 0 : inputs[0].channels)
        .integer ("main_output_channels", outputs.empty() ? 0 : outputs[0].channels)
        .integer ("latency_samples", plugin.latency());
    std::printf ("%s\n", out.text().c_str());
    return 0;
}

int commandProcess (const std::vector<std::string>& bundles, const std::string& inPath, const std::string& outPath,
                    int block, double rate)
{
    wav::Audio audio = wav::read (inPath);
    const int channels = static_cast<int> (audio.channels.size());
    if (channels > 2)
        throw UsageError (inPath + ": " + std::to_string (channels) + " channels; give a mono or stereo WAV file");
    if (rate <= 0)
        rate = audio.sampleRate;

    std::vector<std::unique_ptr<Plugin>> chain;
    for (const auto& bundle : bundles)
    {
        auto plugin = std::make_unique<Plugin> (bundle);
        plugin->configure (channels, block, rate, Vst::kOffline);
        if (plugin->mainInputChannels() != channels || plugin->mainOutputChannels() != channels)
            throw HostError (bundle + ": " + plugin->name + " takes " + std::to_string (plugin->mainInputChannels())
                             + " in / " + std::to_string (plugin->mainOutputChannels()) + " out channels and refused "
                             + std::to_string (channels) + "; give a " + std::to_string (plugin->mainInputChannels())
                             + "-channel WAV file");
        plugin->startProcessing();
        chain.push_back (std::move (plugin));
    }

    // The note-ons plugins send (a classifier's results), at their output sample.
    std::vector<std::string> notes;
    // Two block buffers, swapped after each plugin: the output of one is the next's input.
    std::vector<std::vector<float>> a (channels, std::vector<float> (block)), b = a;
    std::vector<float*> in (channels), out (channels);
    const std::size_t frames = audio.frames();
    for (std::size_t start = 0; start < frames; start += block)
    {
        const int n = static_cast<int> (std::min<std::size_t> (block, frames - start));
        for (int c = 0; c < channels; ++c)
        {
            std::copy_n (audio.channels[c].begin() + start, n, a[c].begin());
            in[c] = a[c].data();
            out[c] = b[c].data();
        }
        for (std::size_t p = 0; p < chain.size(); ++p)
        {
            auto& plugin = chain[p];
            if (plugin->process (in.data(), out.data(), n) != kResultOk)
                throw HostError (plugin->module->bundle + ": process() failed at sample " + std::to_string (start));
            std::swap (in, out);
            auto& events = plugin->events();
            for (int32 e = 0; e < events.getEventCount(); ++e)
            {
                Vst::Event event {};
                events.getEvent (e, event);
                if (event.type == Vst::Event::kNoteOnEvent)
                    notes.push_back (Json().integer ("plugin", static_cast<long long> (p))
                                         .integer ("sample", static_cast<long long> (start) + event.sampleOffset)
                                         .integer ("note", event.noteOn.pitch).num ("velocity", event.noteOn.velocity)
                                         .text());
            }
        }
        for (int c = 0; c < channels; ++c)
            std::copy_n (in[c], n, audio.channels[c].begin() + start);
    }
    for (auto& plugin : chain)
        plugin->stopProcessing();

    audio.sampleRate = static_cast<int> (std::lround (rate));
    wav::writeFloat (outPath, audio);

    std::vector<std::string> plugins;
    for (const auto& plugin : chain)
        plugins.push_back (Json().str ("bundle", plugin->module->bundle).str ("name", plugin->name)
                               .integer ("latency_samples", plugin->latency()).text());
    Json result;
    result.raw ("plugins", Json::array (plugins)).str ("in", inPath).str ("out", outPath)
        .integer ("channels", channels).integer ("frames", static_cast<long long> (frames))
        .integer ("block", block).num ("rate", rate).raw ("notes", Json::array (notes));
    std::printf ("%s\n", result.text().c_str());
    return 0;
}

// The counters of librt_interpose.so, found at run time: the host runs without it
// for info/process, and says how to load it for rtcheck.
struct Counters
{
    decltype (&elk_rt_arm) arm = nullptr;
    decltype (&elk_rt_name) name = nullptr;
    decltype (&elk_rt_count) count = nullptr;
    decltype (&elk_rt_callers) callers = nullptr;
    decltype (&elk_rt_reset) reset = nullptr;

    static Counters find()
    {
        Counters c;
        c.arm = reinterpret_cast<decltype (&elk_rt_arm)> (dlsym (RTLD_DEFAULT, "elk_rt_arm"));
        c.name = reinterpret_cast<decltype (&elk_rt_name)> (dlsym (RTLD_DEFAULT, "elk_rt_name"));
        c.count = reinterpret_cast<decltype (&elk_rt_count)> (dlsym (RTLD_DEFAULT, "elk_rt_count"));
        c.callers = reinterpret_cast<decltype (&elk_rt_callers)> (dlsym (RTLD_DEFAULT, "elk_rt_callers"));
        c.reset = reinterpret_cast<decltype (&elk_rt_reset)> (dlsym (RTLD_DEFAULT, "elk_rt_reset"));
        if (! c.arm || ! c.name || ! c.count || ! c.callers || ! c.reset)
            throw UsageError ("rtcheck needs the call counter: run with LD_PRELOAD=<path>/librt_interpose.so "
                              "(elkbuild.rt_check does this)");
        return c;
    }
};

// What the audio thread itself did around one process() call (read outside the
// counted window: these are system calls).
struct ThreadUsage
{
    double cpuMicros = 0.0;      // CPU time this thread ran
    long voluntarySwitches = 0;  // times it gave up the CPU to wait (sleep, lock, I/O)

    static ThreadUsage now()
    {
        timespec cpu {};
        clock_gettime (CLOCK_THREAD_CPUTIME_ID, &cpu);
        rusage usage {};
        getrusage (RUSAGE_THREAD, &usage);
        return { static_cast<double> (cpu.tv_sec) * 1e6 + static_cast<double> (cpu.tv_nsec) / 1e3, usage.ru_nvcsw };
    }
};

std::string describeCaller (void* address)
{
    Dl_info info {};
    if (dladdr (address, &info) == 0 || info.dli_fname == nullptr)
        return "unknown";
    std::string object = info.dli_fname;
    object = object.substr (object.find_last_of ('/') + 1);
    char offset[32];
    std::snprintf (offset, sizeof (offset), "+0x%lx",
                   static_cast<unsigned long> (static_cast<char*> (address) - static_cast<char*> (info.dli_fbase)));
    std::string text = object + offset;
    if (info.dli_sname != nullptr)
    {
        int status = 0;
        char* demangled = abi::__cxa_demangle (info.dli_sname, nullptr, nullptr, &status);
        text += std::string (" (") + (status == 0 && demangled ? demangled : info.dli_sname) + ")";
        std::free (demangled);
    }
    return text;
}

int commandRtcheck (const std::string& bundle, long blocks, long warmup, int block, double rate)
{
    const Counters counters = Counters::find();
    Plugin plugin (bundle);
    plugin.configure (0, block, rate);
    const int inChannels = plugin.mainInputChannels();
    const int outChannels = plugin.mainOutputChannels();

    // Everything the audio thread touches is allocated here, before it starts.
    std::vector<std::vector<float>> inputs (std::max (inChannels, 1), std::vector<float> (block));
    std::vector<std::vector<float>> outputs (outChannels, std::vector<float> (block));
    std::vector<float*> in (inputs.size()), out (outputs.size());
    for (std::size_t c = 0; c < inputs.size(); ++c)
        in[c] = inputs[c].data();
    for (std::size_t c = 0; c < outputs.size(); ++c)
        out[c] = outputs[c].data();
    const double deadlineMicros = 1e6 * block / rate;
    std::vector<double> micros (static_cast<std::size_t> (blocks));
    // A block can be late because the plugin worked or waited that long, or because
    // this unprivileged thread was runnable but not running (preempted, or a virtual
    // machine's stolen time): on Elk the audio thread is real-time and is not. The
    // thread's own CPU time and its voluntary context switches tell the two apart.
    long overruns = 0, stalls = 0;
    // The first channel in and out of every judged block: afterwards the output is
    // compared with the input delayed by the reported latency (a pass-through).
    std::vector<float> heardIn (static_cast<std::size_t> (blocks) * block), heardOut (heardIn.size());
    long failures = 0;
    unsigned long long startupTotal = 0;
    std::string workerAtWarmup = "null", workerAtEnd = "null";
    counters.reset();

    std::thread audio ([&] {
        pthread_setname_np (pthread_self(), "audio");
        plugin.startProcessing();
        uint32_t noise = 0x9E3779B9u;
        // Blocks come at the pace of the audio clock, as from a sound card: a plugin
        // that infers on a worker thread gets the time a real host gives it.
        const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration> (
            std::chrono::duration<double> (block / rate));
        auto due = std::chrono::steady_clock::now();
        // The first `warmup` blocks are counted apart: a thread's first call into a
        // plugin may set up its thread-local storage (the loader allocates), as at
        // Sushi's start, which the monitor's grace period also allows for.
        for (long i = -warmup; i < blocks; ++i)
        {
            if (i == 0)
                workerAtWarmup = plugin.module->workerReport(); // unarmed: not counted
            if (i == 0 && warmup > 0)
            {
                for (int f = 0; f < ELK_RT_FUNCTION_COUNT; ++f)
                    startupTotal += counters.count (f);
                counters.reset();
            }
            for (auto& channel : inputs)
                for (float& s : channel)
                {
                    noise ^= noise << 13; // xorshift32: noise with no library call
                    noise ^= noise >> 17;
                    noise ^= noise << 5;
                    s = static_cast<float> (noise) / 4294967296.0f - 0.5f;
                }
            const auto before = ThreadUsage::now();
            const auto started = std::chrono::steady_clock::now();
            counters.arm (1);
            const tresult result = plugin.process (in.data(), out.data(), block);
            counters.arm (0);
            const auto ended = std::chrono::steady_clock::now();
            const auto after = ThreadUsage::now();
            if (i >= 0)
            {
                const double took = std::chrono::duration<double, std::micro> (ended - started).count();
                micros[static_cast<std::size_t> (i)] = took;
                if (took > deadlineMicros)
                {
                    const bool stalled = after.cpuMicros - before.cpuMicros <= deadlineMicros
                                      && after.voluntarySwitches == before.voluntarySwitches;
                    ++(stalled ? stalls : overruns);
                }
                std::copy_n (inputs[0].data(), block, heardIn.begin() + i * block);
                if (! outputs.empty())
                    std::copy_n (outputs[0].data(), block, heardOut.begin() + i * block);
            }
            failures += result != kResultOk;
            due += period;
            // A sound card never hands over missed periods in a burst: after a stall
            // (a preempted host, a virtual machine's stolen time) the clock resumes
            // from now, as it would after an xrun, instead of racing the worker.
            if (const auto now = std::chrono::steady_clock::now(); now > due + period)
                due = now;
            std::this_thread::sleep_until (due);
        }
        // Before stopProcessing: JUCE resets the plugin there, and with it the counts.
        workerAtEnd = plugin.module->workerReport();
        plugin.stopProcessing();
    });
    audio.join();

    std::vector<std::string> counts, callers;
    unsigned long long total = 0;
    for (int f = 0; f < ELK_RT_FUNCTION_COUNT; ++f)
    {
        const unsigned long long n = counters.count (f);
        total += n;
        counts.push_back (Json::quote (counters.name (f)) + ": " + std::to_string (n));
        void* addresses[ELK_RT_MAX_CALLERS];
        unsigned long long calls[ELK_RT_MAX_CALLERS];
        const int found = counters.callers (f, addresses, calls, ELK_RT_MAX_CALLERS);
        if (found == 0)
            continue;
        std::vector<std::string> where;
        for (int i = 0; i < found; ++i)
            where.push_back (Json().str ("at", describeCaller (addresses[i]))
                                 .integer ("calls", static_cast<long long> (calls[i])).text());
        callers.push_back (Json::quote (counters.name (f)) + ": " + Json::array (where));
    }
    auto object = [] (const std::vector<std::string>& fields) {
        std::string text = "{";
        for (std::size_t i = 0; i < fields.size(); ++i)
            text += (i ? ", " : "") + fields[i];
        return text + "}";
    };

    std::vector<double> sorted = micros;
    std::sort (sorted.begin(), sorted.end());
    auto percentile = [&] (double p) {
        if (sorted.empty())
            return 0.0;
        const auto rank = static_cast<std::size_t> (std::ceil (p * sorted.size()));
        return sorted[std::min (sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
    };
    // After the latency: how far the output is from the input delayed by it (0: the
    // plugin passed the noise through) and from silence.
    const std::size_t latency = plugin.latency();
    double passthroughDifference = 0.0, outputPeak = 0.0;
    for (std::size_t t = latency; t < heardOut.size(); ++t)
    {
        passthroughDifference = std::max (passthroughDifference, (double) std::abs (heardOut[t] - heardIn[t - latency]));
        outputPeak = std::max (outputPeak, (double) std::abs (heardOut[t]));
    }

    Json result;
    result.str ("bundle", bundle).str ("name", plugin.name).str ("arch", kArch).integer ("blocks", blocks)
        .integer ("warmup_blocks", warmup).integer ("startup_calls", static_cast<long long> (startupTotal))
        .integer ("block", block).num ("rate", rate).integer ("input_channels", inChannels)
        .integer ("output_channels", outChannels).raw ("counts", object (counts))
        .integer ("total", static_cast<long long> (total)).raw ("callers", object (callers))
        .integer ("process_failures", failures).num ("p50_us", percentile (0.50)).num ("p99_us", percentile (0.99))
        .num ("max_us", sorted.empty() ? 0.0 : sorted.back()).num ("deadline_us", deadlineMicros)
        .integer ("overruns", overruns).integer ("stalls", stalls)
        .integer ("latency_samples", static_cast<long long> (latency))
        .num ("passthrough_difference", passthroughDifference).num ("output_peak", outputPeak)
        .raw ("worker_at_warmup", workerAtWarmup).raw ("worker", workerAtEnd);
    std::printf ("%s\n", result.text().c_str());
    return 0;
}

// ---- command line ---------------------------------------------------------------

const char* kUsage =
    "usage: vst3host info BUNDLE\n"
    "       vst3host process [BUNDLE] [--plugin BUNDLE]... --in IN.wav --out OUT.wav [--block N] [--rate R]\n"
    "       vst3host rtcheck BUNDLE [--blocks N] [--warmup N] [--block N] [--rate R]   (needs LD_PRELOAD=librt_interpose.so)\n"
    "Each command prints one JSON object; errors are one line on stderr.\n";

long parseInteger (const std::string& flag, const std::string& text, long low, long high)
{
    char* end = nullptr;
    const long value = std::strtol (text.c_str(), &end, 10);
    if (text.empty() || *end != 0 || value < low || value > high)
        throw UsageError (flag + " is '" + text + "'; give a whole number from " + std::to_string (low) + " to "
                          + std::to_string (high));
    return value;
}

double parseRate (const std::string& text)
{
    char* end = nullptr;
    const double value = std::strtod (text.c_str(), &end);
    if (text.empty() || *end != 0 || ! (value >= 1000.0 && value <= 768000.0))
        throw UsageError ("--rate is '" + text + "'; give a sample rate in Hz from 1000 to 768000");
    return value;
}

int run (int argc, char** argv)
{
    std::vector<std::string> args (argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help")
    {
        std::printf ("%s", kUsage);
        return args.empty() ? 2 : 0;
    }
    const std::string command = args[0];
    std::vector<std::string> positional, plugins;
    std::map<std::string, std::string> options;
    for (std::size_t i = 1; i < args.size(); ++i)
    {
        const std::string& arg = args[i];
        if (arg.rfind ("--", 0) == 0)
        {
            if (arg == "--help")
            {
                std::printf ("%s", kUsage);
                return 0;
            }
            if (i + 1 >= args.size())
                throw UsageError (arg + " needs a value");
            if (arg == "--plugin")
                plugins.push_back (args[++i]);
            else
                options[arg] = args[++i];
        }
        else
            positional.push_back (arg);
    }
    auto option = [&] (const std::string& key, const std::string& fallback) {
        auto it = options.find (key);
        return it == options.end() ? fallback : it->second;
    };
    auto allow = [&] (std::initializer_list<const char*> known) {
        for (const auto& [key, value] : options)
            if (std::find_if (known.begin(), known.end(), [&] (const char* k) { return key == k; }) == known.end())
                throw UsageError (command + ": unknown option " + key + "; see vst3host --help");
    };

    if (command == "info")
    {
        allow ({});
        if (positional.size() != 1 || ! plugins.empty())
            throw UsageError ("info takes one BUNDLE; see vst3host --help");
        return commandInfo (positional[0]);
    }
    if (command == "process")
    {
        allow ({ "--in", "--out", "--block", "--rate" });
        positional.insert (positional.end(), plugins.begin(), plugins.end());
        if (positional.empty())
            throw UsageError ("process needs at least one BUNDLE (or --plugin BUNDLE); see vst3host --help");
        if (option ("--in", "").empty() || option ("--out", "").empty())
            throw UsageError ("process needs --in IN.wav and --out OUT.wav");
        const int block = static_cast<int> (parseInteger ("--block", option ("--block", "64"), 1, 1 << 16));
        const double rate = options.count ("--rate") ? parseRate (options["--rate"]) : 0.0;
        return commandProcess (positional, options["--in"], options["--out"], block, rate);
    }
    if (command == "rtcheck")
    {
        allow ({ "--blocks", "--warmup", "--block", "--rate" });
        if (positional.size() != 1 || ! plugins.empty())
            throw UsageError ("rtcheck takes one BUNDLE; see vst3host --help");
        const long blocks = parseInteger ("--blocks", option ("--blocks", "10000"), 1, 100000000);
        const long warmup = parseInteger ("--warmup", option ("--warmup", "0"), 0, 100000);
        const int block = static_cast<int> (parseInteger ("--block", option ("--block", "64"), 1, 1 << 16));
        return commandRtcheck (positional[0], blocks, warmup, block, parseRate (option ("--rate", "48000")));
    }
    throw UsageError ("unknown command '" + command + "'; use info, process or rtcheck");
}

} // namespace

int main (int argc, char** argv)
{
    try
    {
        return run (argc, argv);
    }
    catch (const UsageError& e)
    {
        std::fprintf (stderr, "vst3host: error: %s\n", e.what());
        return 2;
    }
    catch (const std::exception& e)
    {
        std::fprintf (stderr, "vst3host: error: %s\n", e.what());
        return 1;
    }
}
