// sharedPool(): the process-wide pool of libelkrt_pool.so.1 through its C ABI, or
// a pool of this plugin's own when that cannot be had.
#include "elkrt/inference_pool.h"
#include "elkrt/pool_abi.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace elkrt
{
namespace
{

class ProcessPool final : public WorkerPool
{
public:
    explicit ProcessPool (const elkrt_pool_api_v1& poolApi) : api (poolApi) {}

    bool attach (PoolClient& client) override
    {
        std::lock_guard<std::mutex> lock (membership);
        for (auto& entry : entries)
        {
            if (entry.client != nullptr)
                continue;
            const elkrt_pool_client_v1 c { &client, hasPending, processPending };
            const int handle = api.attach (&c);
            if (handle < 0)
                return false;
            entry = { &client, handle };
            return true;
        }
        return false;
    }

    void detach (PoolClient& client) override
    {
        std::lock_guard<std::mutex> lock (membership);
        for (auto& entry : entries)
            if (entry.client == &client)
            {
                api.detach (entry.handle);
                entry = {};
            }
    }

    int threadCount() const noexcept override { return stats().threads; }
    std::chrono::microseconds maxIdleSleep() const noexcept override { return std::chrono::microseconds (stats().max_idle_sleep_us); }
    int workersThatRan() const noexcept override { return stats().workers_that_ran; }
    int realtimeWorkers() const noexcept override { return stats().realtime_workers; }
    std::uint64_t identity() const noexcept override { return stats().identity; }

private:
    struct Entry
    {
        PoolClient* client = nullptr;
        int handle = -1;
    };

    static int hasPending (void* context) { return static_cast<PoolClient*> (context)->hasPending() ? 1 : 0; }
    static void processPending (void* context) { static_cast<PoolClient*> (context)->processPending(); }

    elkrt_pool_stats_v1 stats() const noexcept
    {
        elkrt_pool_stats_v1 out {};
        api.stats (&out);
        return out;
    }

    const elkrt_pool_api_v1& api;
    std::mutex membership; // attach/detach only
    std::array<Entry, maxClients> entries {};
};

std::mutex sharedGuard;
PoolOptions sharedOptions;
std::unique_ptr<WorkerPool> pool;
SharedPoolStatus status;

std::unique_ptr<WorkerPool> openPool()
{
    if (const char* sharing = std::getenv ("ELKRT_POOL_SHARING"); sharing != nullptr && std::strcmp (sharing, "plugin") == 0)
    {
        status.reason = "ELKRT_POOL_SHARING=plugin";
        return std::make_unique<InferencePool> (sharedOptions);
    }
    uint32_t spoken = 0;
    const elkrt_pool_api_v1* api = elkrt_pool_open (ELKRT_POOL_ABI_VERSION, &spoken);
    if (api == nullptr || api->abi_version != ELKRT_POOL_ABI_VERSION || api->size < sizeof (elkrt_pool_api_v1))
    {
        status.reason = std::string (ELKRT_POOL_SONAME " loaded in this process speaks pool ABI ") + std::to_string (spoken)
                      + ", this plugin needs " + std::to_string (ELKRT_POOL_ABI_VERSION)
                      + ": it runs its models on a pool of its own (bundle the same elkbuild version in every plugin to share one)";
        std::fprintf (stderr, "elkrt: %s\n", status.reason.c_str());
        return std::make_unique<InferencePool> (sharedOptions);
    }
    const elkrt_pool_options_v1 wanted { sharedOptions.threads, static_cast<int32_t> (sharedOptions.minIdleSleep.count()),
                                         static_cast<int32_t> (sharedOptions.maxIdleSleep.count()), sharedOptions.realtimePriority };
    api->configure (&wanted); // another plugin may have sized it already: first user wins
    status.processWide = true;
    return std::make_unique<ProcessPool> (*api);
}

} // namespace

WorkerPool& sharedPool()
{
    std::lock_guard<std::mutex> lock (sharedGuard);
    if (pool == nullptr)
        pool = openPool();
    return *pool;
}

bool configureSharedPool (const PoolOptions& options)
{
    std::lock_guard<std::mutex> lock (sharedGuard);
    if (pool != nullptr)
        return false;
    sharedOptions = options;
    return true;
}

SharedPoolStatus sharedPoolStatus()
{
    std::lock_guard<std::mutex> lock (sharedGuard);
    return status;
}

} // namespace elkrt
