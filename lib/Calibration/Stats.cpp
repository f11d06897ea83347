//===- Stats.cpp - calibration statistics files ---------------------------===//

#include "qnt/Calibration/Stats.h"

#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace qnt;
using llvm::createStringError;
using llvm::inconvertibleErrorCode;

/// Reads a number or an array of numbers.
static llvm::Expected<std::vector<float>>
readFloats(const llvm::json::Value *value, llvm::StringRef what) {
  std::vector<float> result;
  if (!value)
    return createStringError(inconvertibleErrorCode(), "missing '%s'",
                             what.str().c_str());
  // null: the observer saw no finite value; the folding pass reports it.
  if (value->getAsNull())
    return result;
  if (std::optional<double> number = value->getAsNumber()) {
    result.push_back(static_cast<float>(*number));
    return result;
  }
  if (const llvm::json::Array *array = value->getAsArray()) {
    for (const llvm::json::Value &element : *array) {
      std::optional<double> number = element.getAsNumber();
      if (!number)
        return createStringError(inconvertibleErrorCode(),
                                 "'%s' must hold numbers",
                                 what.str().c_str());
      result.push_back(static_cast<float>(*number));
    }
    if (!result.empty())
      return result;
  }
  return createStringError(inconvertibleErrorCode(),
                           "'%s' must be null, a number or a non-empty array "
                           "of numbers",
                           what.str().c_str());
}

static llvm::Expected<ObserverStats>
readObserver(const llvm::json::Object &object) {
  ObserverStats stats;
  std::optional<llvm::StringRef> kind = object.getString("kind");
  if (!kind)
    return createStringError(inconvertibleErrorCode(), "missing 'kind'");
  stats.kind = kind->str();
  auto min = readFloats(object.get("min"), "min");
  if (!min)
    return min.takeError();
  auto max = readFloats(object.get("max"), "max");
  if (!max)
    return max.takeError();
  if (min->size() != max->size())
    return createStringError(inconvertibleErrorCode(),
                             "'min' and 'max' differ in length");
  stats.min = std::move(*min);
  stats.max = std::move(*max);
  stats.count = object.getInteger("count").value_or(0);
  stats.nonfinite = object.getInteger("nonfinite").value_or(0);
  return stats;
}

llvm::Expected<StatsFile> qnt::readStatsFile(llvm::StringRef path) {
  auto fail = [&](const llvm::Twine &message) {
    return createStringError(inconvertibleErrorCode(),
                             "statistics file '" + path + "': " + message);
  };
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return fail("cannot read: " + buffer.getError().message());
  llvm::Expected<llvm::json::Value> json =
      llvm::json::parse((*buffer)->getBuffer());
  if (!json)
    return fail("invalid JSON: " + llvm::toString(json.takeError()));
  const llvm::json::Object *root = json->getAsObject();
  if (!root || root->getString("format") != "qnt-stats")
    return fail("not a qnt statistics file (expected \"format\": "
                "\"qnt-stats\")");
  if (root->getInteger("version") != 1)
    return fail("unsupported version (expected 1)");
  const llvm::json::Object *observers = root->getObject("observers");
  if (!observers)
    return fail("missing 'observers'");

  StatsFile file;
  file.numSamples = root->getInteger("num_samples").value_or(0);
  for (const auto &[id, value] : *observers) {
    const llvm::json::Object *object = value.getAsObject();
    if (!object)
      return fail("observer '" + id.str() + "' is not an object");
    llvm::Expected<ObserverStats> stats = readObserver(*object);
    if (!stats)
      return fail("observer '" + id.str() +
                  "': " + llvm::toString(stats.takeError()));
    file.observers[id.str()] = std::move(*stats);
  }
  return file;
}
