// A deliberately real-time-unsafe VST3 plugin for testing `rt-check`: its process()
// allocates with malloc, frees, and locks a mutex, every block. Written straight
// against pluginterfaces (no JUCE, no SDK helper classes) so it compiles in seconds.
// Audio passes through unchanged. Built with -DBAD_PLUGIN_NO_FACTORY it exports no
// GetPluginFactory, for the host's "factory missing" error.
#define INIT_CLASS_IID
#include "pluginterfaces/base/funknown.h"
#include "pluginterfaces/base/ipluginbase.h"
#include "pluginterfaces/vst/ivstaudioprocessor.h"
#include "pluginterfaces/vst/ivstcomponent.h"
#include "pluginterfaces/vst/vstspeaker.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

using namespace Steinberg;

namespace
{

// Any fixed 16 bytes will do; hosts only need it to be unique.
const TUID kBadProcessorId = INLINE_UID (0x4241440A, 0x11E11E11, 0xE1BADBAD, 0x00C0FFEE);

bool equal (const TUID a, const FUID& b) { return FUnknownPrivate::iidEqual (a, b.toTUID()); }

class BadProcessor final : public Vst::IComponent, public Vst::IAudioProcessor
{
public:
    // FUnknown, shared by both interfaces.
    tresult PLUGIN_API queryInterface (const TUID iid, void** obj) override
    {
        if (equal (iid, FUnknown::iid) || equal (iid, IPluginBase::iid) || equal (iid, Vst::IComponent::iid))
            *obj = static_cast<Vst::IComponent*> (this);
        else if (equal (iid, Vst::IAudioProcessor::iid))
            *obj = static_cast<Vst::IAudioProcessor*> (this);
        else
        {
            *obj = nullptr;
            return kNoInterface;
        }
        addRef();
        return kResultOk;
    }
    uint32 PLUGIN_API addRef() override { return ++references; }
    uint32 PLUGIN_API release() override
    {
        const uint32 left = --references;
        if (left == 0)
            delete this;
        return left;
    }

    // IPluginBase
    tresult PLUGIN_API initialize (FUnknown*) override { return kResultOk; }
    tresult PLUGIN_API terminate() override { return kResultOk; }

    // IComponent: one stereo main bus each way, no controller, no state.
    tresult PLUGIN_API getControllerClassId (TUID) override { return kNotImplemented; }
    tresult PLUGIN_API setIoMode (Vst::IoMode) override { return kResultOk; }
    int32 PLUGIN_API getBusCount (Vst::MediaType type, Vst::BusDirection) override { return type == Vst::kAudio ? 1 : 0; }
    tresult PLUGIN_API getBusInfo (Vst::MediaType type, Vst::BusDirection dir, int32 index, Vst::BusInfo& bus) override
    {
        if (type != Vst::kAudio || index != 0)
            return kInvalidArgument;
        bus.mediaType = Vst::kAudio;
        bus.direction = dir;
        bus.channelCount = 2;
        const char* name = dir == Vst::kInput ? "Input" : "Output";
        int i = 0;
        for (; name[i] != 0; ++i)
            bus.name[i] = static_cast<Vst::TChar> (name[i]);
        bus.name[i] = 0;
        bus.busType = Vst::kMain;
        bus.flags = Vst::BusInfo::kDefaultActive;
        return kResultOk;
    }
    tresult PLUGIN_API getRoutingInfo (Vst::RoutingInfo&, Vst::RoutingInfo&) override { return kNotImplemented; }
    tresult PLUGIN_API activateBus (Vst::MediaType, Vst::BusDirection, int32, TBool) override { return kResultOk; }
    tresult PLUGIN_API setActive (TBool) override { return kResultOk; }
    tresult PLUGIN_API setState (IBStream*) override { return kResultOk; }
    tresult PLUGIN_API getState (IBStream*) override { return kResultOk; }

    // IAudioProcessor
    tresult PLUGIN_API setBusArrangements (Vst::SpeakerArrangement* ins, int32 numIns, Vst::SpeakerArrangement* outs,
                                           int32 numOuts) override
    {
        const bool stereo = numIns == 1 && numOuts == 1 && ins[0] == Vst::SpeakerArr::kStereo
                            && outs[0] == Vst::SpeakerArr::kStereo;
        return stereo ? kResultTrue : kResultFalse;
    }
    tresult PLUGIN_API getBusArrangement (Vst::BusDirection, int32 index, Vst::SpeakerArrangement& arr) override
    {
        if (index != 0)
            return kInvalidArgument;
        arr = Vst::SpeakerArr::kStereo;
        return kResultOk;
    }
    tresult PLUGIN_API canProcessSampleSize (int32 size) override
    {
        return size == Vst::kSample32 ? kResultTrue : kResultFalse;
    }
    uint32 PLUGIN_API getLatencySamples() override { return 0; }
    tresult PLUGIN_API setupProcessing (Vst::ProcessSetup&) override { return kResultOk; }
    tresult PLUGIN_API setProcessing (TBool) override { return kResultOk; }
    uint32 PLUGIN_API getTailSamples() override { return 0; }

    tresult PLUGIN_API process (Vst::ProcessData& data) override
    {
        // The faults rt-check must find: a lock and a heap round trip per block.
        std::lock_guard<std::mutex> lock (mutex);
        const auto bytes = static_cast<size_t> (data.numSamples) * sizeof (float);
        // volatile: the compiler may not fold the malloc/free pair away.
        float* volatile scratch = static_cast<float*> (std::malloc (bytes));
        if (data.numInputs > 0 && data.numOutputs > 0)
            for (int32 c = 0; c < data.outputs[0].numChannels && c < data.inputs[0].numChannels; ++c)
            {
                std::memcpy (scratch, data.inputs[0].channelBuffers32[c], bytes);
                std::memcpy (data.outputs[0].channelBuffers32[c], scratch, bytes);
            }
        std::free (scratch);
        return kResultOk;
    }

private:
    std::atomic<uint32> references { 1 };
    std::mutex mutex;
};

class Factory final : public IPluginFactory
{
public:
    tresult PLUGIN_API queryInterface (const TUID iid, void** obj) override
    {
        if (equal (iid, FUnknown::iid) || equal (iid, IPluginFactory::iid))
        {
            *obj = this;
            return kResultOk;
        }
        *obj = nullptr;
        return kNoInterface;
    }
    uint32 PLUGIN_API addRef() override { return 1; } // static lifetime
    uint32 PLUGIN_API release() override { return 1; }

    tresult PLUGIN_API getFactoryInfo (PFactoryInfo* info) override
    {
        *info = {};
        std::strncpy (info->vendor, "elkbuild tests", sizeof (info->vendor) - 1);
        info->flags = PFactoryInfo::kUnicode;
        return kResultOk;
    }
    int32 PLUGIN_API countClasses() override { return 1; }
    tresult PLUGIN_API getClassInfo (int32 index, PClassInfo* info) override
    {
        if (index != 0)
            return kInvalidArgument;
        *info = {};
        std::memcpy (info->cid, kBadProcessorId, sizeof (TUID));
        info->cardinality = PClassInfo::kManyInstances;
        std::strncpy (info->category, kVstAudioEffectClass, sizeof (info->category) - 1);
        std::strncpy (info->name, "Bad", sizeof (info->name) - 1);
        return kResultOk;
    }
    tresult PLUGIN_API createInstance (FIDString cid, FIDString iid, void** obj) override
    {
        *obj = nullptr;
        if (! FUnknownPrivate::iidEqual (cid, kBadProcessorId))
            return kNoInterface;
        auto* processor = new BadProcessor();
        const tresult result = processor->queryInterface (iid, obj);
        processor->release();
        return result;
    }
};

Factory factory;

} // namespace

extern "C" {
SMTG_EXPORT_SYMBOL bool ModuleEntry (void*) { return true; }
SMTG_EXPORT_SYMBOL bool ModuleExit() { return true; }
#ifndef BAD_PLUGIN_NO_FACTORY
SMTG_EXPORT_SYMBOL IPluginFactory* PLUGIN_API GetPluginFactory() { return &factory; }
#endif
}
