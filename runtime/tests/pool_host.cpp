// A host that loads plugin-like shared objects as Sushi loads VST3 modules
// (dlopen, RTLD_LOCAL) and runs them in one process, to show whether they share
// one inference pool.
//
//   elkrt_pool_host [--preload LIB] [--model M --roles R]... [--instances N] [--blocks B]
//                   [--pace] [--budget-ms X] [--expect shared|separate] [--expect-reason TEXT] PLUGIN.so...
//
// Without --pace the host does not keep time: the models run offline (each block
// waits for its worker), so the output is exact however loaded the machine is.
// --preload loads LIB first (another plugin's copy of libelkrt_pool.so.1). The i-th
// --model/--roles go to the i-th plugin (the last to the rest); none: a fake identity
// engine. Prints one
// JSON line: each plugin's pool, the process's threads, CPU seconds; --expect fails
// (exit 1) unless the plugins' pools are one (shared) or all different (separate),
// and every plugin's output is its input delayed by its latency (fake engine);
// --expect-reason fails unless every plugin's pool is its own for a reason saying TEXT.
#include <dirent.h>
#include <dlfcn.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace
{

struct Plugin
{
    int (*open) (const char*, const char*, int, int, double, int);
    void (*process) (const float*, float*, int);
    int (*latency)();
    void (*pool) (char*, int);
    void (*close)();
    std::vector<float> output;
};

int threadsInProcess()
{
    int count = 0;
    if (DIR* tasks = opendir ("/proc/self/task"))
    {
        while (dirent* entry = readdir (tasks))
            count += entry->d_name[0] != '.' ? 1 : 0;
        closedir (tasks);
    }
    return count;
}

double cpuSeconds()
{
    rusage usage {};
    getrusage (RUSAGE_SELF, &usage);
    auto seconds = [] (const timeval& t) { return static_cast<double> (t.tv_sec) + 1e-6 * static_cast<double> (t.tv_usec); };
    return seconds (usage.ru_utime) + seconds (usage.ru_stime);
}

template <typename F>
F symbol (void* library, const char* name)
{
    void* found = dlsym (library, name);
    if (found == nullptr)
    {
        std::fprintf (stderr, "no %s: %s\n", name, dlerror());
        std::exit (2);
    }
    return reinterpret_cast<F> (found);
}

std::string poolOf (const std::string& json)
{
    const auto at = json.find ("\"pool\": \"") + 9;
    return json.substr (at, json.find ('"', at) - at);
}

} // namespace

int main (int argc, char** argv)
{
    const char *preload = nullptr, *expect = nullptr, *reason = nullptr;
    int instances = 4, blocks = 200;
    double budget = 0.003;
    bool pace = false;
    std::vector<const char*> paths, models, roles;
    for (int i = 1; i < argc; ++i)
    {
        const std::string option = argv[i];
        auto value = [&] { return i + 1 < argc ? argv[++i] : ""; };
        if (option == "--preload") preload = value();
        else if (option == "--model") models.push_back (value());
        else if (option == "--roles") roles.push_back (value());
        else if (option == "--instances") instances = std::atoi (value());
        else if (option == "--blocks") blocks = std::atoi (value());
        else if (option == "--budget-ms") budget = 1e-3 * std::atof (value());
        else if (option == "--pace") pace = true;
        else if (option == "--expect") expect = value();
        else if (option == "--expect-reason") reason = value();
        else paths.push_back (argv[i]);
    }
    const int threadsAtStart = threadsInProcess();
    if (preload != nullptr && dlopen (preload, RTLD_NOW | RTLD_LOCAL) == nullptr)
    {
        std::fprintf (stderr, "%s\n", dlerror());
        return 2;
    }
    std::vector<Plugin> plugins;
    for (const char* path : paths)
    {
        void* library = dlopen (path, RTLD_NOW | RTLD_LOCAL);
        if (library == nullptr)
        {
            std::fprintf (stderr, "%s\n", dlerror());
            return 2;
        }
        Plugin plugin { symbol<int (*) (const char*, const char*, int, int, double, int)> (library, "plugin_open"),
                        symbol<void (*) (const float*, float*, int)> (library, "plugin_process"),
                        symbol<int (*)()> (library, "plugin_latency"), symbol<void (*) (char*, int)> (library, "plugin_pool"),
                        symbol<void (*)()> (library, "plugin_close"), {} };
        const std::size_t which = std::min (plugins.size(), models.size() - 1);
        if (models.size() != roles.size())
            return 2;
        if (! plugin.open (models.empty() ? nullptr : models[which], roles.empty() ? nullptr : roles[which], instances, 64, budget, pace ? 0 : 1))
            return 2;
        plugins.push_back (plugin);
    }

    std::vector<float> input (static_cast<std::size_t> (blocks) * 64);
    for (std::size_t n = 0; n < input.size(); ++n)
        input[n] = static_cast<float> (0.3 * std::sin (0.01 * static_cast<double> (n)) + 1e-4 * static_cast<double> (n % 97));
    for (auto& plugin : plugins)
        plugin.output.assign (input.size(), 0.0f);
    const double cpuBefore = cpuSeconds();
    const auto started = std::chrono::steady_clock::now();
    const auto period = std::chrono::microseconds (64 * 1000000 / 48000);
    int threadsRunning = 0;
    for (int b = 0; b < blocks; ++b)
    {
        for (auto& plugin : plugins)
            plugin.process (input.data() + b * 64, plugin.output.data() + b * 64, 64);
        if (pace)
            std::this_thread::sleep_until (started + (b + 1) * period);
        if (b == blocks / 2)
            threadsRunning = threadsInProcess();
    }
    const double seconds = std::chrono::duration<double> (std::chrono::steady_clock::now() - started).count();
    const double cpu = cpuSeconds() - cpuBefore;

    std::string json = "{\"plugins\": [";
    std::set<std::string> pools;
    int poolThreads = 0; // of the distinct pools
    bool exact = true;
    bool reasons = true;
    for (std::size_t p = 0; p < plugins.size(); ++p)
    {
        char line[1024];
        plugins[p].pool (line, sizeof (line));
        json += (p > 0 ? ", " : "") + std::string (line);
        if (pools.insert (poolOf (line)).second)
            poolThreads += std::atoi (std::strstr (line, "\"threads\": ") + 11);
        if (reason != nullptr)
            reasons = reasons && std::strstr (line, "\"process_wide\": false") != nullptr && std::strstr (line, reason) != nullptr;
        const auto delay = static_cast<std::size_t> (plugins[p].latency());
        if (models.empty())
            for (std::size_t n = delay; n < input.size(); ++n)
                exact = exact && std::fabs (plugins[p].output[n] - input[n - delay]) < 1e-6f;
    }
    std::printf ("%s], \"pools\": %zu, \"threads_before\": %d, \"threads_running\": %d, \"cpu_seconds\": %.4f, "
                 "\"seconds\": %.4f, \"output_exact\": %s}\n",
                 json.c_str(), pools.size(), threadsAtStart, threadsRunning, cpu, seconds, exact ? "true" : "false");
    for (auto& plugin : plugins)
        plugin.close();
    if (expect == nullptr)
        return 0;
    const bool shared = pools.size() == 1;
    const bool separate = pools.size() == plugins.size();
    // The only threads the plugins start are their pools' workers.
    const bool poolsRight = (std::string (expect) == "shared" ? shared : separate)
                         && threadsRunning - threadsAtStart == poolThreads;
    if (! poolsRight || ! exact || ! reasons)
        std::fprintf (stderr, "expected %s pools, got %zu pool(s) for %zu plugins, %d new threads for %d workers; output %s%s\n",
                      expect, pools.size(), plugins.size(), threadsRunning - threadsAtStart, poolThreads,
                      exact ? "exact" : "wrong", reasons ? "" : "; a plugin's pool is not its own for the reason expected");
    return poolsRight && exact && reasons ? 0 : 1;
}
