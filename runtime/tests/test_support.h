// A tiny test registry: ELKRT_TEST(name) { ... CHECK(...); }. One ctest case per
// name runs `elkrt_tests <name>`.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>

namespace elkrt_test
{

std::map<std::string, std::function<void()>>& registry();

struct Registrar
{
    Registrar (const char* name, std::function<void()> body) { registry()[name] = std::move (body); }
};

struct Failure : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

inline void fail (const char* file, int line, const std::string& what)
{
    throw Failure (std::string (file) + ":" + std::to_string (line) + ": " + what);
}

} // namespace elkrt_test

#define ELKRT_TEST(name)                                                  \
    static void name();                                                   \
    static const elkrt_test::Registrar name##_registrar (#name, name);    \
    static void name()

#define CHECK(condition)                                                  \
    do                                                                    \
    {                                                                     \
        if (! (condition))                                                \
            elkrt_test::fail (__FILE__, __LINE__, "CHECK (" #condition ")"); \
    } while (false)

#define CHECK_EQ(actual, expected)                                        \
    do                                                                    \
    {                                                                     \
        const auto actualValue = (actual);                                \
        const auto expectedValue = (expected);                            \
        if (! (actualValue == expectedValue))                             \
            elkrt_test::fail (__FILE__, __LINE__, #actual " == " + std::to_string (actualValue) \
                                  + ", expected " #expected " == " + std::to_string (expectedValue)); \
    } while (false)

#define CHECK_NEAR(actual, expected, tolerance)                           \
    do                                                                    \
    {                                                                     \
        const double actualValue = (actual);                              \
        const double expectedValue = (expected);                          \
        if (! (std::abs (actualValue - expectedValue) <= (tolerance)))    \
            elkrt_test::fail (__FILE__, __LINE__, #actual " == " + std::to_string (actualValue) \
                                  + ", expected " + std::to_string (expectedValue)); \
    } while (false)
