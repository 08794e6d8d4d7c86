#include "test_support.h"

#include <set>

namespace elkrt_test
{
std::map<std::string, std::function<void()>>& registry()
{
    static std::map<std::string, std::function<void()>> tests;
    return tests;
}
} // namespace elkrt_test

namespace
{
bool runOne (const std::string& name, const std::function<void()>& body)
{
    try
    {
        body();
        std::printf ("PASS %s\n", name.c_str());
        return true;
    }
    catch (const std::exception& e)
    {
        std::printf ("FAIL %s: %s\n", name.c_str(), e.what());
        return false;
    }
}
} // namespace

// elkrt_tests            runs every test
// elkrt_tests NAME       runs one
// elkrt_tests --check-list NAME...   fails unless NAME... are exactly the tests compiled in
int main (int argc, char** argv)
{
    auto& tests = elkrt_test::registry();
    if (argc >= 2 && std::string (argv[1]) == "--check-list")
    {
        std::set<std::string> listed (argv + 2, argv + argc);
        bool same = listed.size() == tests.size();
        for (const auto& test : tests)
            if (listed.count (test.first) == 0)
            {
                std::printf ("test %s is compiled but not registered with ctest\n", test.first.c_str());
                same = false;
            }
        for (const auto& name : listed)
            if (tests.count (name) == 0)
            {
                std::printf ("ctest lists %s, which is not compiled in\n", name.c_str());
                same = false;
            }
        return same ? 0 : 1;
    }
    if (argc == 2)
    {
        const auto found = tests.find (argv[1]);
        if (found == tests.end())
        {
            std::printf ("no test %s\n", argv[1]);
            return 2;
        }
        return runOne (found->first, found->second) ? 0 : 1;
    }
    int failed = 0;
    for (const auto& test : tests)
        failed += runOne (test.first, test.second) ? 0 : 1;
    std::printf ("%zu passed, %d failed\n", tests.size() - static_cast<std::size_t> (failed), failed);
    return failed == 0 ? 0 : 1;
}
