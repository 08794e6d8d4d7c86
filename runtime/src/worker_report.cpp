#include "elkrt/worker_report.h"

#include "elkrt/streaming_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

namespace elkrt
{
namespace
{

std::mutex listMutex;

std::vector<const StreamingModel*>& listed()
{
    static std::vector<const StreamingModel*> models;
    return models;
}

// Of values sorted ascending.
double percentile (const std::vector<double>& values, double p)
{
    if (values.empty())
        return 0.0;
    const auto rank = static_cast<std::size_t> (std::ceil (p * static_cast<double> (values.size())));
    return values[std::min (values.size() - 1, rank == 0 ? 0 : rank - 1)];
}

} // namespace

void listModel (const StreamingModel& model)
{
    const std::lock_guard<std::mutex> lock (listMutex);
    auto& models = listed();
    if (std::find (models.begin(), models.end(), &model) == models.end())
        models.push_back (&model);
}

void unlistModel (const StreamingModel& model)
{
    const std::lock_guard<std::mutex> lock (listMutex);
    auto& models = listed();
    models.erase (std::remove (models.begin(), models.end(), &model), models.end());
}

std::string workerReport()
{
    const std::lock_guard<std::mutex> lock (listMutex);
    unsigned long long count = 0, runs = 0, failed = 0, underruns = 0, overruns = 0;
    double p99 = 0.0, slowest = 0.0, budget = 0.0, worstShare = -1.0;
    for (const StreamingModel* model : listed())
    {
        if (! model->decoupled())
            continue;
        const auto stats = model->stats();
        ++count;
        runs += stats.framesRun;
        failed += stats.failedRuns;
        underruns += stats.underrunSamples;
        overruns += stats.overrunSamples;
        auto times = model->inferenceTimes();
        std::sort (times.begin(), times.end());
        const double modelP99 = percentile (times, 0.99);
        const double share = stats.runBudgetSeconds > 0.0 ? modelP99 / stats.runBudgetSeconds : 0.0;
        if (share > worstShare)
        {
            worstShare = share;
            p99 = modelP99;
            slowest = times.empty() ? 0.0 : times.back();
            budget = stats.runBudgetSeconds;
        }
    }
    char text[512];
    std::snprintf (text, sizeof (text),
                   "{\"models\": %llu, \"runs\": %llu, \"failed_runs\": %llu, \"underrun_samples\": %llu, "
                   "\"overrun_samples\": %llu, \"p99_us\": %.1f, \"max_us\": %.1f, \"budget_us\": %.1f}",
                   count, runs, failed, underruns, overruns, 1e6 * p99, 1e6 * slowest, 1e6 * budget);
    return text;
}

} // namespace elkrt

int elkrt_worker_report (char* json, int size)
{
    const std::string text = elkrt::workerReport();
    if (json != nullptr && size > 0)
    {
        const auto kept = std::min (text.size(), static_cast<std::size_t> (size - 1));
        std::memcpy (json, text.data(), kept);
        json[kept] = '\0';
    }
    return static_cast<int> (text.size());
}
