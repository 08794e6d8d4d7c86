// libelkrt_pool.so.1: the process-wide InferencePool behind the C ABI of
// elkrt/pool_abi.h. Only elkrt_pool_open is exported (pool_library.map): the pool's
// C++ symbols bind inside this object and never meet a plugin's copy of libelkrt.
#include "elkrt/inference_pool.h"
#include "elkrt/pool_abi.h"

#include <array>
#include <memory>
#include <mutex>

// The version this copy speaks; a test builds a copy speaking another one.
#ifndef ELKRT_POOL_ABI_SPOKEN
#define ELKRT_POOL_ABI_SPOKEN ELKRT_POOL_ABI_VERSION
#endif

namespace
{

// A C client seen as a PoolClient; one per slot, so attach allocates nothing.
class CClient final : public elkrt::PoolClient
{
public:
    elkrt_pool_client_v1 client {};
    bool used = false;
    void processPending() noexcept override { client.process_pending (client.context); }
    bool hasPending() const noexcept override { return client.has_pending (client.context) != 0; }
};

std::mutex guard; // configure, attach, detach and stats: never a worker or the audio thread
elkrt::PoolOptions options;
std::unique_ptr<elkrt::InferencePool> pool;
std::array<CClient, elkrt::InferencePool::maxClients> clients;

elkrt::InferencePool& thePool()
{
    if (pool == nullptr)
        pool = std::make_unique<elkrt::InferencePool> (options);
    return *pool;
}

int configure (const elkrt_pool_options_v1* wanted)
{
    std::lock_guard<std::mutex> lock (guard);
    if (pool != nullptr || wanted == nullptr)
        return 0;
    options.threads = wanted->threads;
    options.minIdleSleep = std::chrono::microseconds (wanted->min_idle_sleep_us);
    options.maxIdleSleep = std::chrono::microseconds (wanted->max_idle_sleep_us);
    options.realtimePriority = wanted->realtime_priority;
    return 1;
}

int attach (const elkrt_pool_client_v1* client)
{
    std::lock_guard<std::mutex> lock (guard);
    for (std::size_t i = 0; i < clients.size(); ++i)
    {
        if (clients[i].used)
            continue;
        clients[i].client = *client;
        if (! thePool().attach (clients[i]))
            return -1;
        clients[i].used = true;
        return static_cast<int> (i);
    }
    return -1;
}

void detach (int handle)
{
    std::lock_guard<std::mutex> lock (guard);
    if (handle < 0 || static_cast<std::size_t> (handle) >= clients.size() || ! clients[static_cast<std::size_t> (handle)].used)
        return;
    auto& slot = clients[static_cast<std::size_t> (handle)];
    thePool().detach (slot);
    slot.used = false;
}

void stats (elkrt_pool_stats_v1* out)
{
    std::lock_guard<std::mutex> lock (guard);
    auto& p = thePool();
    out->identity = reinterpret_cast<std::uintptr_t> (&p);
    out->threads = p.threadCount();
    out->max_idle_sleep_us = static_cast<int32_t> (p.maxIdleSleep().count());
    out->workers_that_ran = p.workersThatRan();
    out->realtime_workers = p.realtimeWorkers();
    out->clients = 0;
    for (const auto& c : clients)
        out->clients += c.used ? 1 : 0;
}

const elkrt_pool_api_v1 api { ELKRT_POOL_ABI_SPOKEN, sizeof (elkrt_pool_api_v1), configure, attach, detach, stats };

} // namespace

extern "C" __attribute__ ((visibility ("default"))) const elkrt_pool_api_v1* elkrt_pool_open (uint32_t wanted, uint32_t* spoken)
{
    if (spoken != nullptr)
        *spoken = ELKRT_POOL_ABI_SPOKEN;
    return wanted == ELKRT_POOL_ABI_SPOKEN ? &api : nullptr;
}
