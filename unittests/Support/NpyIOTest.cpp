//===- NpyIOTest.cpp - Tests for .npy / .npz reading and writing ----------===//
//
// Interoperability is checked against real numpy: fixtures are generated at
// test time with /usr/bin/python3, and numpy loads what we write.
//
//===----------------------------------------------------------------------===//

#include "qnt/Support/NpyIO.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <cstdlib>
#include <cstring>
#include <sys/wait.h>

using namespace llvm;
using namespace qnt;

namespace {

constexpr const char *kPython = "/usr/bin/python3";

const NpyDType kAllDTypes[] = {NpyDType::F32, NpyDType::F64, NpyDType::I8,
                               NpyDType::U8,  NpyDType::I16, NpyDType::I32,
                               NpyDType::I64, NpyDType::Bool};

/// A scratch directory removed after each test.
class NpyIOTest : public ::testing::Test {
protected:
  void SetUp() override {
    SmallString<128> path;
    ASSERT_FALSE(sys::fs::createUniqueDirectory("qnt-npyio", path));
    dir = std::string(path);
  }
  void TearDown() override {
    if (!dir.empty())
      sys::fs::remove_directories(dir);
  }

  std::string file(StringRef name) const {
    SmallString<128> path(dir);
    sys::path::append(path, name);
    return std::string(path);
  }

  void writeFile(StringRef name, StringRef contents) const {
    std::error_code ec;
    raw_fd_ostream os(file(name), ec);
    ASSERT_FALSE(ec) << ec.message();
    os << contents;
  }

  std::string readFile(StringRef name) const {
    auto buffer = MemoryBuffer::getFile(file(name));
    EXPECT_TRUE(bool(buffer)) << name.str();
    return buffer ? (*buffer)->getBuffer().str() : std::string();
  }

  std::vector<std::string> listDir() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (sys::fs::directory_iterator it(dir, ec), end; it != end && !ec;
         it.increment(ec))
      names.push_back(sys::path::filename(it->path()).str());
    llvm::sort(names);
    return names;
  }

  /// Runs a Python script (with numpy) taking the scratch dir as argv[1];
  /// returns its exit status.
  int runPython(StringRef script) const {
    writeFile("script.py", script);
    std::string cmd =
        std::string(kPython) + " '" + file("script.py") + "' '" + dir + "'";
    int status = std::system(cmd.c_str());
    if (status == -1 || !WIFEXITED(status))
      return -1;
    return WEXITSTATUS(status);
  }

  std::string dir;
};

/// numpy is a hard requirement of the interop tests: fail, don't skip.
bool haveNumpy() {
  static const bool available = [] {
    std::string cmd =
        std::string(kPython) + " -c 'import numpy' >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
  }();
  return available;
}

#define REQUIRE_NUMPY()                                                        \
  ASSERT_TRUE(haveNumpy())                                                     \
      << kPython << " with numpy is required for this test but is missing"

/// Element i holds the value i (i % 2 for bool), like
/// np.arange(n).astype(dtype) in the Python checks.
NpyArray makeArray(StringRef name, NpyDType dtype, ArrayRef<int64_t> shape) {
  NpyArray array;
  array.name = name.str();
  array.dtype = dtype;
  array.shape.assign(shape.begin(), shape.end());
  int64_t n = array.getNumElements();
  size_t size = getNpyElementSize(dtype);
  array.data.resize(n * size);
  for (int64_t i = 0; i < n; ++i) {
    uint8_t *p = array.data.data() + i * size;
    switch (dtype) {
    case NpyDType::F32: {
      float v = i;
      std::memcpy(p, &v, size);
      break;
    }
    case NpyDType::F64: {
      double v = i;
      std::memcpy(p, &v, size);
      break;
    }
    case NpyDType::Bool:
      *p = i % 2;
      break;
    default: {
      // Integers: little-endian two's complement of i.
      uint64_t v = i;
      std::memcpy(p, &v, size);
      break;
    }
    }
  }
  return array;
}

template <typename T> std::vector<T> valuesOf(const NpyArray &array) {
  EXPECT_EQ(array.data.size() % sizeof(T), 0u);
  std::vector<T> values(array.data.size() / sizeof(T));
  if (!values.empty())
    std::memcpy(values.data(), array.data.data(), array.data.size());
  return values;
}

void expectSameArray(const NpyArray &expected, const NpyArray &actual) {
  EXPECT_EQ(expected.name, actual.name);
  EXPECT_EQ(expected.dtype, actual.dtype);
  EXPECT_EQ(std::vector<int64_t>(expected.shape.begin(), expected.shape.end()),
            std::vector<int64_t>(actual.shape.begin(), actual.shape.end()));
  EXPECT_EQ(expected.data, actual.data);
}

std::string errorOf(Error err) {
  return err ? toString(std::move(err)) : std::string("<success>");
}

template <typename T> std::string errorOf(Expected<T> value) {
  return value ? std::string("<success>") : toString(value.takeError());
}

/// A version 1.0 .npy image with a hand-written header dict.
std::string makeNpy(StringRef dict, StringRef data) {
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(dict.size() & 0xFF));
  out.push_back(static_cast<char>(dict.size() >> 8));
  out += dict;
  out += data;
  return out;
}

std::vector<std::vector<int64_t>> testShapes() {
  return {{}, {0}, {1}, {5}, {2, 3}, {2, 0, 4}, {1, 2, 1, 3}};
}

//===----------------------------------------------------------------------===//
// Round trips
//===----------------------------------------------------------------------===//

TEST(NpyIOBasics, DescrAndElementSize) {
  EXPECT_EQ(getNpyDescr(NpyDType::F32), "<f4");
  EXPECT_EQ(getNpyDescr(NpyDType::F64), "<f8");
  EXPECT_EQ(getNpyDescr(NpyDType::I8), "|i1");
  EXPECT_EQ(getNpyDescr(NpyDType::U8), "|u1");
  EXPECT_EQ(getNpyDescr(NpyDType::I16), "<i2");
  EXPECT_EQ(getNpyDescr(NpyDType::I32), "<i4");
  EXPECT_EQ(getNpyDescr(NpyDType::I64), "<i8");
  EXPECT_EQ(getNpyDescr(NpyDType::Bool), "|b1");
  EXPECT_EQ(getNpyElementSize(NpyDType::F32), 4u);
  EXPECT_EQ(getNpyElementSize(NpyDType::F64), 8u);
  EXPECT_EQ(getNpyElementSize(NpyDType::I8), 1u);
  EXPECT_EQ(getNpyElementSize(NpyDType::U8), 1u);
  EXPECT_EQ(getNpyElementSize(NpyDType::I16), 2u);
  EXPECT_EQ(getNpyElementSize(NpyDType::I32), 4u);
  EXPECT_EQ(getNpyElementSize(NpyDType::I64), 8u);
  EXPECT_EQ(getNpyElementSize(NpyDType::Bool), 1u);

  NpyArray scalar;
  EXPECT_EQ(scalar.getNumElements(), 1);
  scalar.shape = {2, 0, 3};
  EXPECT_EQ(scalar.getNumElements(), 0);
}

TEST(NpyIOBasics, SerializeNpyHeaderLayout) {
  for (NpyDType dtype : kAllDTypes) {
    for (const auto &shape : testShapes()) {
      NpyArray array = makeArray("a", dtype, shape);
      std::string bytes = serializeNpy(array);
      ASSERT_GE(bytes.size(), 10u);
      EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
      size_t headerLen = static_cast<uint8_t>(bytes[8]) |
                         (static_cast<uint8_t>(bytes[9]) << 8);
      size_t dataStart = 10 + headerLen;
      EXPECT_EQ(dataStart % 64, 0u);
      ASSERT_EQ(bytes.size(), dataStart + array.data.size());
      EXPECT_EQ(bytes[dataStart - 1], '\n');
      EXPECT_NE(bytes.find(("'descr': '" + getNpyDescr(dtype) + "'").str()),
                std::string::npos);

      Expected<NpyArray> parsed = parseNpy(bytes, "dir/a.npy");
      ASSERT_TRUE(bool(parsed)) << toString(parsed.takeError());
      expectSameArray(array, *parsed);
    }
  }
  // Python tuple syntax: "()", "(3,)", "(2, 3)".
  EXPECT_NE(serializeNpy(makeArray("a", NpyDType::F32, {})).find("'shape': ()"),
            std::string::npos);
  EXPECT_NE(
      serializeNpy(makeArray("a", NpyDType::F32, {3})).find("'shape': (3,)"),
      std::string::npos);
  EXPECT_NE(serializeNpy(makeArray("a", NpyDType::F32, {2, 3}))
                .find("'shape': (2, 3)"),
            std::string::npos);
}

TEST_F(NpyIOTest, RoundTripEveryDTypeThroughNpz) {
  std::vector<NpyArray> arrays;
  for (NpyDType dtype : kAllDTypes) {
    int k = 0;
    for (const auto &shape : testShapes())
      arrays.push_back(
          makeArray((getNpyDescr(dtype).substr(1) + "_" + Twine(k++)).str(),
                    dtype, shape));
  }
  std::string path = file("all.npz");
  ASSERT_FALSE(bool(writeNpz(path, arrays)));
  Expected<std::vector<NpyArray>> read = readNpyOrNpz(path);
  ASSERT_TRUE(bool(read)) << toString(read.takeError());
  ASSERT_EQ(read->size(), arrays.size());
  for (size_t i = 0; i < arrays.size(); ++i)
    expectSameArray(arrays[i], (*read)[i]);
  // Only the archive is left: no temporary files.
  EXPECT_EQ(listDir(), std::vector<std::string>{"all.npz"});
}

TEST_F(NpyIOTest, RoundTripEveryDTypeThroughNpy) {
  for (NpyDType dtype : kAllDTypes) {
    for (const auto &shape : testShapes()) {
      NpyArray array = makeArray("single", dtype, shape);
      writeFile("single.npy", serializeNpy(array));
      Expected<std::vector<NpyArray>> read = readNpyOrNpz(file("single.npy"));
      ASSERT_TRUE(bool(read)) << toString(read.takeError());
      ASSERT_EQ(read->size(), 1u);
      expectSameArray(array, read->front());
    }
  }
}

TEST_F(NpyIOTest, WriteNpzReplacesExistingFile) {
  std::string path = file("out.npz");
  writeFile("out.npz", "old contents");
  ASSERT_FALSE(bool(writeNpz(path, {makeArray("x", NpyDType::I32, {4})})));
  Expected<std::vector<NpyArray>> read = readNpyOrNpz(path);
  ASSERT_TRUE(bool(read)) << toString(read.takeError());
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(valuesOf<int32_t>(read->front()),
            (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(listDir(), std::vector<std::string>{"out.npz"});
}

TEST_F(NpyIOTest, DetectsFormatByContent) {
  NpyArray array = makeArray("v", NpyDType::F64, {3});
  // An archive named .npy and an array named .npz.
  ASSERT_FALSE(bool(writeNpz(file("archive.npy"), {array})));
  writeFile("array.npz", serializeNpy(array));

  Expected<std::vector<NpyArray>> fromZip = readNpyOrNpz(file("archive.npy"));
  ASSERT_TRUE(bool(fromZip)) << toString(fromZip.takeError());
  ASSERT_EQ(fromZip->size(), 1u);
  expectSameArray(array, fromZip->front());

  Expected<std::vector<NpyArray>> fromNpy = readNpyOrNpz(file("array.npz"));
  ASSERT_TRUE(bool(fromNpy)) << toString(fromNpy.takeError());
  ASSERT_EQ(fromNpy->size(), 1u);
  EXPECT_EQ(fromNpy->front().name, "array");
  EXPECT_EQ(fromNpy->front().data, array.data);
}

//===----------------------------------------------------------------------===//
// Interoperability with numpy
//===----------------------------------------------------------------------===//

TEST_F(NpyIOTest, ReadsFilesWrittenByNumpy) {
  REQUIRE_NUMPY();
  ASSERT_EQ(runPython(R"py(
import io, os, sys, zipfile
import numpy as np
d = sys.argv[1]
j = lambda n: os.path.join(d, n)
for dt in ['<f4', '<f8', '|i1', '|u1', '<i2', '<i4', '<i8']:
    np.save(j('t_%s.npy' % dt[1:]), np.arange(6).astype(dt).reshape(2, 3))
np.save(j('t_b1.npy'), (np.arange(6) % 2).astype(bool).reshape(2, 3))
np.save(j('scalar.npy'), np.array(3.5))
np.save(j('vec.npy'), np.arange(3, dtype='<i4'))
np.save(j('empty.npy'), np.zeros((0, 4), dtype='<f4'))
for v in (2, 3):
    with open(j('v%d.npy' % v), 'wb') as f:
        np.lib.format.write_array(f, np.arange(4, dtype='<f8'), version=(v, 0))
np.save(j('fortran.npy'), np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3)))
np.save(j('big.npy'), np.arange(3, dtype='>f4'))
np.savez(j('plain.npz'), x=np.arange(6, dtype='<f4').reshape(2, 3),
         y=np.array(7, dtype='<i8'), b=np.array([True, False]))
np.savez_compressed(j('comp.npz'), x=np.arange(1000, dtype='<f4'),
                    y=np.arange(6, dtype='|u1').reshape(3, 2))
np.savez(j('none.npz'))
with zipfile.ZipFile(j('other.npz'), 'w') as z:
    z.writestr('readme.txt', 'hi')
# An unseekable stream makes zipfile use data descriptors (flag bit 3).
class Stream:
    def __init__(self, f): self.f = f
    def write(self, b): return self.f.write(b)
    def flush(self): self.f.flush()
    def read(self, n=-1): raise OSError('write-only')  # numpy wants one
with open(j('stream.npz'), 'wb') as f:
    np.savez_compressed(Stream(f), x=np.arange(4, dtype='<i4'))
# Lowering zipfile's limits makes it emit zip64 central directory extra
# fields and zip64 end records, as it does for real multi-GiB archives.
zipfile.ZIP64_LIMIT = 16
zipfile.ZIP_FILECOUNT_LIMIT = 1
np.savez(j('zip64.npz'), x=np.arange(5, dtype='<i2'), y=np.arange(3, dtype='<f8'))
np.savez_compressed(j('zip64c.npz'), x=np.arange(5, dtype='<i2'),
                    y=np.arange(3, dtype='<f8'))
)py"),
            0);

  // Every dtype, as np.save writes it.
  for (NpyDType dtype : kAllDTypes) {
    std::string name = ("t_" + getNpyDescr(dtype).substr(1) + ".npy").str();
    Expected<std::vector<NpyArray>> read = readNpyOrNpz(file(name));
    ASSERT_TRUE(bool(read)) << toString(read.takeError());
    ASSERT_EQ(read->size(), 1u);
    NpyArray expected = makeArray(sys::path::stem(name), dtype, {2, 3});
    expectSameArray(expected, read->front());
  }

  auto readOne = [&](StringRef name) -> NpyArray {
    Expected<std::vector<NpyArray>> read = readNpyOrNpz(file(name));
    EXPECT_TRUE(bool(read)) << name.str() << ": " << toString(read.takeError());
    if (!read || read->size() != 1)
      return NpyArray();
    return read->front();
  };

  NpyArray scalar = readOne("scalar.npy");
  EXPECT_EQ(scalar.name, "scalar");
  EXPECT_EQ(scalar.dtype, NpyDType::F64);
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(valuesOf<double>(scalar), std::vector<double>{3.5});

  NpyArray vec = readOne("vec.npy");
  EXPECT_EQ(vec.shape, (SmallVector<int64_t>{3}));
  EXPECT_EQ(valuesOf<int32_t>(vec), (std::vector<int32_t>{0, 1, 2}));

  NpyArray empty = readOne("empty.npy");
  EXPECT_EQ(empty.shape, (SmallVector<int64_t>{0, 4}));
  EXPECT_TRUE(empty.data.empty());

  for (StringRef name : {"v2.npy", "v3.npy"}) {
    NpyArray v = readOne(name);
    EXPECT_EQ(v.dtype, NpyDType::F64) << name.str();
    EXPECT_EQ(valuesOf<double>(v), (std::vector<double>{0, 1, 2, 3}));
  }

  EXPECT_EQ(errorOf(readNpyOrNpz(file("fortran.npy"))),
            "'" + file("fortran.npy") +
                "': Fortran-ordered arrays are not supported");
  EXPECT_NE(errorOf(readNpyOrNpz(file("big.npy"))).find("big-endian"),
            std::string::npos);

  {
    Expected<std::vector<NpyArray>> read = readNpyOrNpz(file("plain.npz"));
    ASSERT_TRUE(bool(read)) << toString(read.takeError());
    ASSERT_EQ(read->size(), 3u);
    const NpyArray &x = (*read)[0], &y = (*read)[1], &b = (*read)[2];
    EXPECT_EQ(x.name, "x");
    EXPECT_EQ(x.shape, (SmallVector<int64_t>{2, 3}));
    EXPECT_EQ(valuesOf<float>(x), (std::vector<float>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(y.name, "y");
    EXPECT_EQ(y.dtype, NpyDType::I64);
    EXPECT_TRUE(y.shape.empty());
    EXPECT_EQ(valuesOf<int64_t>(y), std::vector<int64_t>{7});
    EXPECT_EQ(b.name, "b");
    EXPECT_EQ(b.dtype, NpyDType::Bool);
    EXPECT_EQ(b.data, (std::vector<uint8_t>{1, 0}));
  }
  {
    Expected<std::vector<NpyArray>> read = readNpyOrNpz(file("comp.npz"));
    ASSERT_TRUE(bool(read)) << toString(read.takeError());
    ASSERT_EQ(read->size(), 2u);
    std::vector<float> expected(1000);
    for (int i = 0; i < 1000; ++i)
      expected[i] = i;
    EXPECT_EQ((*read)[0].name, "x");
    EXPECT_EQ(valuesOf<float>((*read)[0]), expected);
    EXPECT_EQ((*read)[1].name, "y");
    EXPECT_EQ((*read)[1].dtype, NpyDType::U8);
    EXPECT_EQ((*read)[1].shape, (SmallVector<int64_t>{3, 2}));
    EXPECT_EQ((*read)[1].data, (std::vector<uint8_t>{0, 1, 2, 3, 4, 5}));
  }
  {
    NpyArray x = readOne("stream.npz");
    EXPECT_EQ(x.name, "x");
    EXPECT_EQ(valuesOf<int32_t>(x), (std::vector<int32_t>{0, 1, 2, 3}));
  }
  for (StringRef name : {"zip64.npz", "zip64c.npz"}) {
    Expected<std::vector<NpyArray>> read = readNpyOrNpz(file(name));
    ASSERT_TRUE(bool(read)) << name.str() << ": " << toString(read.takeError());
    ASSERT_EQ(read->size(), 2u);
    EXPECT_EQ(valuesOf<int16_t>((*read)[0]),
              (std::vector<int16_t>{0, 1, 2, 3, 4}));
    EXPECT_EQ(valuesOf<double>((*read)[1]), (std::vector<double>{0, 1, 2}));
  }

  EXPECT_EQ(errorOf(readNpyOrNpz(file("none.npz"))),
            "'" + file("none.npz") + "': no arrays");
  EXPECT_EQ(errorOf(readNpyOrNpz(file("other.npz"))),
            "'" + file("other.npz") +
                "': member 'readme.txt': not a .npy file");
}

TEST_F(NpyIOTest, NumpyReadsWhatWeWrite) {
  REQUIRE_NUMPY();
  std::vector<NpyArray> arrays;
  std::string spec;
  raw_string_ostream specOS(spec);
  for (NpyDType dtype : kAllDTypes) {
    int k = 0;
    for (const auto &shape : testShapes()) {
      std::string name =
          ("a_" + getNpyDescr(dtype).substr(1) + "_" + Twine(k++)).str();
      arrays.push_back(makeArray(name, dtype, shape));
      specOS << "('" << name << "', '" << getNpyDescr(dtype) << "', (";
      for (int64_t d : shape)
        specOS << d << ",";
      specOS << ")),\n";
    }
  }
  ASSERT_FALSE(bool(writeNpz(file("ours.npz"), arrays)));
  writeFile("ours.npy", serializeNpy(makeArray("s", NpyDType::I16, {2, 2})));

  std::string script = R"py(
import os, sys
import numpy as np
d = sys.argv[1]
spec = [
)py" + spec + R"py(]
def expected(dt, shape):
    n = int(np.prod(shape))
    a = (np.arange(n) % 2).astype(bool) if dt == '|b1' else np.arange(n).astype(dt)
    return a.reshape(shape)
with np.load(os.path.join(d, 'ours.npz')) as z:
    assert list(z.files) == [s[0] for s in spec], z.files
    for name, dt, shape in spec:
        a = z[name]
        assert a.dtype == np.dtype(dt), (name, a.dtype)
        assert a.shape == shape, (name, a.shape)
        assert np.array_equal(a, expected(dt, shape)), name
s = np.load(os.path.join(d, 'ours.npy'))
assert s.dtype == np.int16 and s.shape == (2, 2), (s.dtype, s.shape)
assert (s == np.arange(4).reshape(2, 2)).all()
)py";
  EXPECT_EQ(runPython(script), 0) << "numpy could not load our output";
}

//===----------------------------------------------------------------------===//
// Malformed input
//===----------------------------------------------------------------------===//

TEST_F(NpyIOTest, TruncatedNpy) {
  std::string bytes = serializeNpy(makeArray("t", NpyDType::F64, {3}));
  writeFile("t.npy", StringRef(bytes).drop_back(4));
  EXPECT_EQ(errorOf(readNpyOrNpz(file("t.npy"))),
            "'" + file("t.npy") +
                "': truncated data: expected 24 bytes, found 20");
  EXPECT_EQ(errorOf(parseNpy(StringRef(bytes).drop_back(4), "x.npy")),
            "'x.npy': truncated data: expected 24 bytes, found 20");
  EXPECT_NE(errorOf(parseNpy(bytes + "xx", "x.npy")).find("trailing data"),
            std::string::npos);
  // Every prefix fails cleanly.
  for (size_t len = 0; len < bytes.size(); ++len)
    EXPECT_FALSE(bool(parseNpy(StringRef(bytes).take_front(len), "x.npy")))
        << len;
}

TEST_F(NpyIOTest, BadMagic) {
  writeFile("junk.npy", "hello, this is not numpy");
  std::string err = errorOf(readNpyOrNpz(file("junk.npy")));
  EXPECT_NE(err.find("'" + file("junk.npy") + "'"), std::string::npos) << err;
  EXPECT_NE(err.find("bad magic"), std::string::npos) << err;

  writeFile("empty.npz", "");
  err = errorOf(readNpyOrNpz(file("empty.npz")));
  EXPECT_NE(err.find("bad magic"), std::string::npos) << err;

  EXPECT_EQ(errorOf(parseNpy("\x93NUMPX\x01\x00", "m.npy")),
            "'m.npy': not a .npy file (bad magic)");
  EXPECT_EQ(
      errorOf(parseNpy(StringRef("\x93NUMPY\x04\x00\x00\x00", 10), "m.npy")),
      "'m.npy': unsupported .npy format version 4.0");
}

TEST_F(NpyIOTest, UnreadableFile) {
  std::string missing = file("missing.npz");
  std::string err = errorOf(readNpyOrNpz(missing));
  EXPECT_EQ(err.rfind("cannot read '" + missing + "': ", 0), 0u) << err;
  err = errorOf(readNpyOrNpz(dir));
  EXPECT_EQ(err.rfind("cannot read '" + dir + "': ", 0), 0u) << err;
}

TEST(NpyIOBasics, BogusHeaders) {
  std::string f4 = std::string(8, '\0');
  struct Case {
    const char *dict;
    const char *expectedError;
  } cases[] = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", nullptr},
      {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L,)}\n",
       nullptr},
      {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
      {"{'descr': '<f4', 'shape': (2,)}", "missing key 'fortran_order'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
       "unexpected key 'x'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': "
       "(2,)}",
       "duplicate key 'descr'"},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}",
       "unsupported dtype '<c8'"},
      {"{'descr': '<U1', 'fortran_order': False, 'shape': (2,)}",
       "unsupported dtype '<U1'"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}",
       "structured"},
      {"{'descr': '>i4', 'fortran_order': False, 'shape': (2,)}",
       "big-endian arrays are not supported"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}",
       "Fortran-ordered arrays are not supported"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", "not a bool"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2]}",
       "'shape' is not a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}",
       "negative dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': ('2',)}",
       "non-integer dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': "
       "(99999999999999999999,)}",
       "integer too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': "
       "(4294967296, 4294967296)}",
       "shape is too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} trailing",
       "unexpected characters after header dict"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}",
       "malformed header"},
      {"{'descr': '<f4' 'fortran_order': False}", "malformed header"},
      {"[1, 2]", "header is not a dict"},
      {"", "header is not a dict"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': "
       "((((((((((((((((((((((((((((((((2,),),),),)}",
       "nesting too deep"},
      {"{'descr': '<f4', 'fortran_order': Falsehood, 'shape': (2,)}",
       "malformed header"},
  };
  for (const Case &c : cases) {
    std::string image = makeNpy(c.dict, f4);
    Expected<NpyArray> parsed = parseNpy(image, "h.npy");
    if (!c.expectedError) {
      EXPECT_TRUE(bool(parsed)) << c.dict << ": " << errorOf(std::move(parsed));
      continue;
    }
    std::string err = errorOf(std::move(parsed));
    EXPECT_EQ(err.rfind("'h.npy': ", 0), 0u) << err;
    EXPECT_NE(err.find(c.expectedError), std::string::npos)
        << c.dict << " gave: " << err;
  }

  // Header length pointing past the end of the file.
  std::string image = makeNpy("{}", "");
  image[8] = '\xff';
  EXPECT_NE(errorOf(parseNpy(image, "h.npy")).find("truncated header"),
            std::string::npos);
}

TEST(NpyIOBasics, AcceptedDescrVariants) {
  struct Case {
    const char *descr;
    NpyDType dtype;
  } cases[] = {{"<i1", NpyDType::I8},   {"|i1", NpyDType::I8},
               {"<u1", NpyDType::U8},   {"|u1", NpyDType::U8},
               {"|b1", NpyDType::Bool}, {"=f4", NpyDType::F32},
               {"<f8", NpyDType::F64},  {"=i8", NpyDType::I64}};
  for (const Case &c : cases) {
    size_t n = getNpyElementSize(c.dtype);
    std::string dict = std::string("{'descr': '") + c.descr +
                       "', 'fortran_order': False, 'shape': (2,), }";
    Expected<NpyArray> parsed =
        parseNpy(makeNpy(dict, std::string(2 * n, '\x01')), "d.npy");
    ASSERT_TRUE(bool(parsed)) << c.descr << ": " << errorOf(std::move(parsed));
    EXPECT_EQ(parsed->dtype, c.dtype) << c.descr;
  }
}

TEST_F(NpyIOTest, CrcMismatchInStoredMember) {
  NpyArray x = makeArray("x", NpyDType::I32, {4});
  ASSERT_FALSE(bool(writeNpz(file("f.npz"), {x})));
  std::string bytes = readFile("f.npz");
  // The data of the first member follows its local header, name and .npy
  // header; flip a bit in its last element.
  size_t dataEnd = 30 + strlen("x.npy") + serializeNpy(x).size();
  ASSERT_LT(dataEnd, bytes.size());
  bytes[dataEnd - 1] ^= 0x10;
  writeFile("f.npz", bytes);
  EXPECT_EQ(errorOf(readNpyOrNpz(file("f.npz"))),
            "'" + file("f.npz") + "': member 'x.npy': CRC mismatch");
}

TEST_F(NpyIOTest, TruncatedZip) {
  std::vector<NpyArray> arrays = {makeArray("a", NpyDType::F32, {3}),
                                  makeArray("b", NpyDType::U8, {2, 2})};
  ASSERT_FALSE(bool(writeNpz(file("full.npz"), arrays)));
  std::string bytes = readFile("full.npz");
  // Every proper prefix is rejected with an error naming the file.
  for (size_t len = 0; len < bytes.size(); ++len) {
    writeFile("cut.npz", StringRef(bytes).take_front(len));
    std::string err = errorOf(readNpyOrNpz(file("cut.npz")));
    EXPECT_NE(err.find("'" + file("cut.npz") + "'"), std::string::npos)
        << len << ": " << err;
  }
  writeFile("cut.npz", StringRef(bytes).drop_back(10));
  EXPECT_NE(errorOf(readNpyOrNpz(file("cut.npz")))
                .find("end of central directory record not found"),
            std::string::npos);
}

TEST_F(NpyIOTest, CorruptedArchivesNeverCrash) {
  REQUIRE_NUMPY();
  ASSERT_EQ(runPython(R"py(
import os, sys
import numpy as np
d = sys.argv[1]
np.savez(os.path.join(d, 'p.npz'), x=np.arange(6, dtype='<f4'), y=np.arange(3, dtype='|i1'))
np.savez_compressed(os.path.join(d, 'c.npz'), x=np.arange(300, dtype='<i2'))
)py"),
            0);
  // Flip every byte of each archive in turn: each read must either succeed
  // or return an error, never crash or read out of bounds.
  for (StringRef name : {"p.npz", "c.npz"}) {
    std::string bytes = readFile(name);
    ASSERT_FALSE(bytes.empty());
    for (size_t i = 0; i < bytes.size(); ++i) {
      for (uint8_t mask : {0xFF, 0x01}) {
        std::string bad = bytes;
        bad[i] ^= mask;
        writeFile("bad.npz", bad);
        Expected<std::vector<NpyArray>> read = readNpyOrNpz(file("bad.npz"));
        if (!read)
          consumeError(read.takeError());
      }
    }
  }
  // A corrupted deflate stream is reported, not silently accepted.
  std::string bytes = readFile("c.npz");
  bytes[bytes.size() / 3] ^= 0x55;
  writeFile("bad.npz", bytes);
  std::string err = errorOf(readNpyOrNpz(file("bad.npz")));
  EXPECT_NE(err.find("'" + file("bad.npz") + "': member 'x.npy': "),
            std::string::npos)
      << err;
}

//===----------------------------------------------------------------------===//
// Write failures
//===----------------------------------------------------------------------===//

TEST_F(NpyIOTest, UnwritableOutputLeavesNothingBehind) {
  std::vector<NpyArray> arrays = {makeArray("x", NpyDType::F32, {2})};

  // The parent "directory" is a regular file.
  writeFile("plain", "x");
  std::string path = file("plain/out.npz");
  std::string err = errorOf(writeNpz(path, arrays));
  EXPECT_EQ(err.rfind("cannot write '" + path + "': ", 0), 0u) << err;

  // A missing directory.
  path = file("nodir/out.npz");
  err = errorOf(writeNpz(path, arrays));
  EXPECT_EQ(err.rfind("cannot write '" + path + "': ", 0), 0u) << err;

  // The destination is a directory: the temporary file is created, but the
  // final rename fails and the temporary must be removed.
  ASSERT_FALSE(sys::fs::create_directory(file("target.npz")));
  path = file("target.npz");
  err = errorOf(writeNpz(path, arrays));
  EXPECT_EQ(err.rfind("cannot write '" + path + "': ", 0), 0u) << err;
  EXPECT_TRUE(sys::fs::is_directory(path));

  EXPECT_EQ(listDir(), (std::vector<std::string>{"plain", "target.npz"}));
}

TEST_F(NpyIOTest, WriteNpzRejectsInconsistentArrays) {
  NpyArray bad = makeArray("x", NpyDType::F32, {3});
  bad.data.pop_back();
  std::string err = errorOf(writeNpz(file("o.npz"), {bad}));
  EXPECT_NE(err.find("shape needs 12 bytes but data has 11"), std::string::npos)
      << err;

  NpyArray a = makeArray("x", NpyDType::F32, {3});
  err = errorOf(writeNpz(file("o.npz"), {a, a}));
  EXPECT_NE(err.find("duplicate array name 'x'"), std::string::npos) << err;
  EXPECT_TRUE(listDir().empty());
}

TEST_F(NpyIOTest, EmptyArchive) {
  ASSERT_FALSE(bool(writeNpz(file("e.npz"), {})));
  EXPECT_EQ(errorOf(readNpyOrNpz(file("e.npz"))),
            "'" + file("e.npz") + "': no arrays");
}

} // namespace
