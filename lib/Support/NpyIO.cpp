//===- NpyIO.cpp - Read and write NumPy .npy / .npz files -----------------===//
//
// Everything read from a file is untrusted: every offset and size is checked
// against the buffer before use, and malformed input yields an llvm::Error
// naming the file instead of a crash.
//
//===----------------------------------------------------------------------===//

#include "qnt/Support/NpyIO.h"
#include "qnt/Support/AtomicFile.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/EndianStream.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>

using namespace llvm;

namespace qnt {

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

static Error makeError(const Twine &msg) {
  return createStringError(inconvertibleErrorCode(), msg);
}

/// Prepends "'what': " (plus an optional context) to an error's message.
static Error prefixError(Error err, const Twine &prefix) {
  return makeError(prefix + toString(std::move(err)));
}

/// True if [offset, offset + length) lies inside a buffer of `size` bytes,
/// without overflowing.
static bool inBounds(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

static uint16_t read16(StringRef bytes, uint64_t offset) {
  return support::endian::read16le(bytes.data() + offset);
}
static uint32_t read32(StringRef bytes, uint64_t offset) {
  return support::endian::read32le(bytes.data() + offset);
}
static uint64_t read64(StringRef bytes, uint64_t offset) {
  return support::endian::read64le(bytes.data() + offset);
}

/// CRC-32 over arbitrarily large buffers (crc32_z takes a size_t length).
static uint32_t updateCrc(uint32_t crc, StringRef bytes) {
  // zlib treats a null buffer as "return the initial value", not "no data".
  if (bytes.empty())
    return crc;
  return static_cast<uint32_t>(crc32_z(
      crc, reinterpret_cast<const Bytef *>(bytes.data()), bytes.size()));
}

/// Product of the dimensions, or nothing on overflow / negative dimension.
static std::optional<uint64_t> countElements(ArrayRef<int64_t> shape) {
  uint64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0)
      return std::nullopt;
    uint64_t d = static_cast<uint64_t>(dim);
    if (d != 0 && count > static_cast<uint64_t>(INT64_MAX) / d)
      return std::nullopt;
    count *= d;
  }
  return count;
}

//===----------------------------------------------------------------------===//
// DTypes
//===----------------------------------------------------------------------===//

StringRef getNpyDescr(NpyDType dtype) {
  switch (dtype) {
  case NpyDType::F32:
    return "<f4";
  case NpyDType::F64:
    return "<f8";
  case NpyDType::I8:
    return "|i1";
  case NpyDType::U8:
    return "|u1";
  case NpyDType::I16:
    return "<i2";
  case NpyDType::I32:
    return "<i4";
  case NpyDType::I64:
    return "<i8";
  case NpyDType::Bool:
    return "|b1";
  }
  return "<f4";
}

size_t getNpyElementSize(NpyDType dtype) {
  switch (dtype) {
  case NpyDType::I8:
  case NpyDType::U8:
  case NpyDType::Bool:
    return 1;
  case NpyDType::I16:
    return 2;
  case NpyDType::F32:
  case NpyDType::I32:
    return 4;
  case NpyDType::F64:
  case NpyDType::I64:
    return 8;
  }
  return 1;
}

int64_t NpyArray::getNumElements() const {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

/// Maps a numpy descr to a dtype. Byte order does not matter for one-byte
/// types; for wider ones only little-endian ('<', or '=' on this
/// little-endian host) is accepted.
static Expected<NpyDType> parseDescr(StringRef descr) {
  if (descr.size() != 3)
    return makeError("unsupported dtype '" + descr + "'");
  char order = descr[0];
  StringRef kind = descr.drop_front();
  if (order != '<' && order != '>' && order != '=' && order != '|' &&
      order != '!')
    return makeError("unsupported dtype '" + descr + "'");

  std::optional<NpyDType> dtype;
  if (kind == "i1")
    dtype = NpyDType::I8;
  else if (kind == "u1")
    dtype = NpyDType::U8;
  else if (kind == "b1")
    dtype = NpyDType::Bool;
  else if (kind == "f4")
    dtype = NpyDType::F32;
  else if (kind == "f8")
    dtype = NpyDType::F64;
  else if (kind == "i2")
    dtype = NpyDType::I16;
  else if (kind == "i4")
    dtype = NpyDType::I32;
  else if (kind == "i8")
    dtype = NpyDType::I64;
  if (!dtype)
    return makeError("unsupported dtype '" + descr + "'");
  if (getNpyElementSize(*dtype) == 1)
    return *dtype;

  bool little = order == '<' || (order == '=' && sys::IsLittleEndianHost);
  bool big = order == '>' || order == '!' ||
             (order == '=' && !sys::IsLittleEndianHost);
  if (big)
    return makeError("big-endian arrays are not supported (dtype '" + descr +
                     "')");
  if (!little)
    return makeError("invalid byte order in dtype '" + descr + "'");
  return *dtype;
}

//===----------------------------------------------------------------------===//
// .npy header parsing
//===----------------------------------------------------------------------===//

namespace {

/// A value of the small Python-literal subset numpy writes in headers.
struct PyValue {
  enum Kind { Str, Bool, Int, Tuple, List, None } kind = None;
  std::string str;
  bool boolean = false;
  bool negative = false;
  uint64_t integer = 0; ///< Magnitude; see `negative`.
  std::vector<PyValue> elems;
};

/// Recursive-descent parser for the header dict, e.g.
///   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
public:
  explicit HeaderParser(StringRef text) : text(text) {}

  Error parseDict(std::vector<std::pair<std::string, PyValue>> &entries) {
    skipSpace();
    if (!consume('{'))
      return makeError("header is not a dict");
    while (true) {
      skipSpace();
      if (consume('}'))
        break;
      PyValue key;
      if (Error err = parseValue(key, 0))
        return err;
      if (key.kind != PyValue::Str)
        return makeError("header dict key is not a string");
      skipSpace();
      if (!consume(':'))
        return makeError("expected ':' in header dict");
      PyValue value;
      if (Error err = parseValue(value, 0))
        return err;
      entries.emplace_back(std::move(key.str), std::move(value));
      skipSpace();
      if (consume('}'))
        break;
      if (!consume(','))
        return makeError("expected ',' or '}' in header dict");
    }
    // numpy pads the header with spaces and a final newline.
    skipSpace();
    if (pos != text.size())
      return makeError("unexpected characters after header dict");
    return Error::success();
  }

private:
  void skipSpace() {
    while (pos < text.size() &&
           (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' ||
            text[pos] == '\r' || text[pos] == '\0'))
      ++pos;
  }

  bool consume(char c) {
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }

  bool consumeWord(StringRef word) {
    if (!text.substr(pos).starts_with(word))
      return false;
    size_t end = pos + word.size();
    // Reject prefixes of longer identifiers ("Truest").
    if (end < text.size() &&
        (isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_'))
      return false;
    pos = end;
    return true;
  }

  Error parseValue(PyValue &out, unsigned depth) {
    // Bounds recursion on adversarial input such as "((((((...".
    if (depth > 16)
      return makeError("header nesting too deep");
    skipSpace();
    if (pos >= text.size())
      return makeError("unexpected end of header");
    char c = text[pos];
    if (c == '\'' || c == '"')
      return parseString(out);
    if (c == '(' || c == '[')
      return parseSequence(out, depth);
    if (c == '-' || isdigit(static_cast<unsigned char>(c)))
      return parseInt(out);
    if (consumeWord("True") || consumeWord("False")) {
      out.kind = PyValue::Bool;
      out.boolean = c == 'T';
      return Error::success();
    }
    if (consumeWord("None")) {
      out.kind = PyValue::None;
      return Error::success();
    }
    return makeError("unexpected character '" + Twine(c) + "' in header");
  }

  Error parseString(PyValue &out) {
    char quote = text[pos++];
    out.kind = PyValue::Str;
    while (pos < text.size() && text[pos] != quote) {
      if (text[pos] == '\\') {
        if (++pos >= text.size())
          break;
      }
      out.str.push_back(text[pos++]);
    }
    if (!consume(quote))
      return makeError("unterminated string in header");
    return Error::success();
  }

  Error parseInt(PyValue &out) {
    out.kind = PyValue::Int;
    out.negative = consume('-');
    size_t start = pos;
    while (pos < text.size() &&
           isdigit(static_cast<unsigned char>(text[pos]))) {
      uint64_t digit = text[pos] - '0';
      if (out.integer > (UINT64_MAX - digit) / 10)
        return makeError("integer too large in header");
      out.integer = out.integer * 10 + digit;
      ++pos;
    }
    if (pos == start)
      return makeError("malformed integer in header");
    // Python 2 era numpy wrote longs as "3L".
    consume('L');
    return Error::success();
  }

  Error parseSequence(PyValue &out, unsigned depth) {
    char close = text[pos] == '(' ? ')' : ']';
    out.kind = text[pos] == '(' ? PyValue::Tuple : PyValue::List;
    ++pos;
    while (true) {
      skipSpace();
      if (consume(close))
        return Error::success();
      PyValue elem;
      if (Error err = parseValue(elem, depth + 1))
        return err;
      out.elems.push_back(std::move(elem));
      skipSpace();
      if (consume(close))
        return Error::success();
      if (!consume(','))
        return makeError("expected ',' or '" + Twine(close) +
                         "' in header sequence");
    }
  }

  StringRef text;
  size_t pos = 0;
};

} // namespace

namespace {
/// A parsed .npy header: the array without its data, and where the data
/// starts in the image.
struct NpyHeader {
  NpyArray array;
  uint64_t dataOffset = 0;
  uint64_t dataBytes = 0; ///< What the shape and dtype need.
};
} // namespace

/// Parses the header of a .npy image (`bytes` may end anywhere after it);
/// errors carry no file prefix (callers add it).
static Expected<NpyHeader> parseNpyHeader(StringRef bytes) {
  static constexpr char kMagic[] = "\x93NUMPY";
  constexpr size_t kMagicLen = 6;
  if (bytes.size() < kMagicLen || !bytes.starts_with(StringRef(kMagic, 6)))
    return makeError("not a .npy file (bad magic)");
  if (bytes.size() < kMagicLen + 2)
    return makeError("truncated header");
  unsigned major = static_cast<unsigned char>(bytes[6]);
  unsigned minor = static_cast<unsigned char>(bytes[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    return makeError("unsupported .npy format version " + Twine(major) + "." +
                     Twine(minor));

  // Version 1.0 has a 16-bit header length, 2.0 and 3.0 a 32-bit one (3.0
  // only differs by allowing UTF-8, irrelevant for the dtypes we accept).
  uint64_t lenSize = major == 1 ? 2 : 4;
  uint64_t headerStart = kMagicLen + 2 + lenSize;
  if (bytes.size() < headerStart)
    return makeError("truncated header");
  uint64_t headerLen =
      major == 1 ? read16(bytes, kMagicLen + 2) : read32(bytes, kMagicLen + 2);
  if (!inBounds(headerStart, headerLen, bytes.size()))
    return makeError("truncated header: header length " + Twine(headerLen) +
                     " exceeds file size");
  StringRef header = bytes.substr(headerStart, headerLen);

  std::vector<std::pair<std::string, PyValue>> entries;
  if (Error err = HeaderParser(header).parseDict(entries))
    return prefixError(std::move(err), "malformed header: ");

  const PyValue *descr = nullptr, *fortran = nullptr, *shape = nullptr;
  for (const auto &[key, value] : entries) {
    const PyValue **slot = key == "descr"           ? &descr
                           : key == "fortran_order" ? &fortran
                           : key == "shape"         ? &shape
                                                    : nullptr;
    if (!slot)
      return makeError("malformed header: unexpected key '" + key + "'");
    if (*slot)
      return makeError("malformed header: duplicate key '" + key + "'");
    *slot = &value;
  }
  if (!descr || !fortran || !shape)
    return makeError("malformed header: missing key '" +
                     Twine(!descr     ? "descr"
                           : !fortran ? "fortran_order"
                                      : "shape") +
                     "'");

  if (descr->kind != PyValue::Str)
    return makeError("unsupported dtype: structured arrays are not supported");
  Expected<NpyDType> dtype = parseDescr(descr->str);
  if (!dtype)
    return dtype.takeError();
  if (fortran->kind != PyValue::Bool)
    return makeError("malformed header: 'fortran_order' is not a bool");
  if (fortran->boolean)
    return makeError("Fortran-ordered arrays are not supported");
  if (shape->kind != PyValue::Tuple)
    return makeError("malformed header: 'shape' is not a tuple");

  NpyArray array;
  array.dtype = *dtype;
  for (const PyValue &dim : shape->elems) {
    if (dim.kind != PyValue::Int)
      return makeError("malformed header: non-integer dimension in 'shape'");
    if (dim.negative && dim.integer != 0)
      return makeError("malformed header: negative dimension in 'shape'");
    if (dim.integer > static_cast<uint64_t>(INT64_MAX))
      return makeError("malformed header: dimension too large");
    array.shape.push_back(static_cast<int64_t>(dim.integer));
  }

  std::optional<uint64_t> count = countElements(array.shape);
  uint64_t elemSize = getNpyElementSize(array.dtype);
  if (!count || *count > UINT64_MAX / elemSize)
    return makeError("shape is too large");
  return NpyHeader{std::move(array), headerStart + headerLen,
                   *count * elemSize};
}

/// Checks that an image of `size` bytes holds exactly the header's data.
static Error checkNpyDataSize(const NpyHeader &header, uint64_t size) {
  uint64_t expected = header.dataBytes;
  uint64_t found = size - header.dataOffset;
  if (found < expected)
    return makeError("truncated data: expected " + Twine(expected) +
                     " bytes, found " + Twine(found));
  if (found > expected)
    return makeError("trailing data: expected " + Twine(expected) +
                     " bytes, found " + Twine(found));
  return Error::success();
}

/// Parses a .npy image; errors carry no file prefix (callers add it).
static Expected<NpyArray> parseNpyImpl(StringRef bytes) {
  Expected<NpyHeader> header = parseNpyHeader(bytes);
  if (!header)
    return header.takeError();
  if (Error err = checkNpyDataSize(*header, bytes.size()))
    return std::move(err);
  StringRef data = bytes.substr(header->dataOffset);
  header->array.data.assign(data.bytes_begin(), data.bytes_end());
  return std::move(header->array);
}

Expected<NpyArray> parseNpy(StringRef bytes, StringRef what) {
  Expected<NpyArray> array = parseNpyImpl(bytes);
  if (!array)
    return prefixError(array.takeError(), "'" + what + "': ");
  array->name = sys::path::stem(what).str();
  return array;
}

//===----------------------------------------------------------------------===//
// .npz (ZIP) reading
//===----------------------------------------------------------------------===//

namespace {
struct ZipMember {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t compressedSize = 0;
  uint64_t uncompressedSize = 0;
  uint64_t localHeaderOffset = 0;
};
} // namespace

// Record sizes and signatures from the PKWARE APPNOTE.
static constexpr uint64_t kLocalHeaderSize = 30;
static constexpr uint64_t kCentralHeaderSize = 46;
static constexpr uint64_t kEndRecordSize = 22;
static constexpr uint64_t kZip64LocatorSize = 20;
static constexpr uint64_t kZip64EndRecordSize = 56;
static constexpr uint32_t kLocalHeaderSig = 0x04034b50;
static constexpr uint32_t kCentralHeaderSig = 0x02014b50;
static constexpr uint32_t kEndRecordSig = 0x06054b50;
static constexpr uint32_t kZip64LocatorSig = 0x07064b50;
static constexpr uint32_t kZip64EndRecordSig = 0x06064b50;
static constexpr uint16_t kZip64ExtraId = 0x0001;

/// Fills in the fields a central directory header marked as 0xFFFFFFFF (or
/// 0xFFFF for the disk number) from its zip64 extra field, in APPNOTE order.
static Error applyZip64Extra(StringRef extra, ZipMember &member,
                             uint32_t &diskStart) {
  bool needUsize = member.uncompressedSize == 0xFFFFFFFF;
  bool needCsize = member.compressedSize == 0xFFFFFFFF;
  bool needOffset = member.localHeaderOffset == 0xFFFFFFFF;
  bool needDisk = diskStart == 0xFFFF;
  if (!needUsize && !needCsize && !needOffset && !needDisk)
    return Error::success();

  uint64_t pos = 0;
  while (inBounds(pos, 4, extra.size())) {
    uint16_t id = read16(extra, pos);
    uint16_t size = read16(extra, pos + 2);
    pos += 4;
    if (!inBounds(pos, size, extra.size()))
      return makeError("malformed extra field");
    if (id != kZip64ExtraId) {
      pos += size;
      continue;
    }
    StringRef field = extra.substr(pos, size);
    uint64_t at = 0;
    auto take64 = [&](uint64_t &value) -> bool {
      if (!inBounds(at, 8, field.size()))
        return false;
      value = read64(field, at);
      at += 8;
      return true;
    };
    if ((needUsize && !take64(member.uncompressedSize)) ||
        (needCsize && !take64(member.compressedSize)) ||
        (needOffset && !take64(member.localHeaderOffset)))
      return makeError("zip64 extra field too short");
    if (needDisk) {
      if (!inBounds(at, 4, field.size()))
        return makeError("zip64 extra field too short");
      diskStart = read32(field, at);
    }
    return Error::success();
  }
  return makeError("missing zip64 extra field");
}

/// Locates and parses the central directory.
static Expected<std::vector<ZipMember>> readCentralDirectory(StringRef file) {
  if (file.size() < kEndRecordSize)
    return makeError("not a valid ZIP archive: end of central directory "
                     "record not found (file truncated?)");

  // The end record sits at the end, followed by a comment of at most 64 KiB;
  // search backwards for the last signature that is consistent.
  uint64_t lowest = file.size() > kEndRecordSize + 0xFFFF
                        ? file.size() - kEndRecordSize - 0xFFFF
                        : 0;
  std::optional<uint64_t> endPos;
  for (uint64_t pos = file.size() - kEndRecordSize + 1; pos-- > lowest;) {
    if (read32(file, pos) == kEndRecordSig &&
        pos + kEndRecordSize + read16(file, pos + 20) <= file.size()) {
      endPos = pos;
      break;
    }
  }
  if (!endPos)
    return makeError("not a valid ZIP archive: end of central directory "
                     "record not found (file truncated?)");

  uint64_t disk = read16(file, *endPos + 4);
  uint64_t cdDisk = read16(file, *endPos + 6);
  uint64_t entriesOnDisk = read16(file, *endPos + 8);
  uint64_t entries = read16(file, *endPos + 10);
  uint64_t cdSize = read32(file, *endPos + 12);
  uint64_t cdOffset = read32(file, *endPos + 16);
  // The central directory must end before the (zip64) end records.
  uint64_t cdLimit = *endPos;

  // Python's zipfile (hence numpy) writes zip64 end records for large
  // archives; their values supersede the saturated 16/32-bit ones.
  if (*endPos >= kZip64LocatorSize &&
      read32(file, *endPos - kZip64LocatorSize) == kZip64LocatorSig) {
    uint64_t locPos = *endPos - kZip64LocatorSize;
    uint64_t recPos = read64(file, locPos + 8);
    if (read32(file, locPos + 4) != 0 || read32(file, locPos + 16) > 1)
      return makeError("multi-disk ZIP archives are not supported");
    if (!inBounds(recPos, kZip64EndRecordSize, locPos) ||
        read32(file, recPos) != kZip64EndRecordSig)
      return makeError("malformed zip64 end of central directory record");
    disk = read32(file, recPos + 16);
    cdDisk = read32(file, recPos + 20);
    entriesOnDisk = read64(file, recPos + 24);
    entries = read64(file, recPos + 32);
    cdSize = read64(file, recPos + 40);
    cdOffset = read64(file, recPos + 48);
    cdLimit = recPos;
  }

  if (disk != 0 || cdDisk != 0 || entriesOnDisk != entries)
    return makeError("multi-disk ZIP archives are not supported");
  if (!inBounds(cdOffset, cdSize, cdLimit))
    return makeError("central directory (offset " + Twine(cdOffset) +
                     ", size " + Twine(cdSize) +
                     ") lies outside the file (truncated?)");
  if (entries > cdSize / kCentralHeaderSize)
    return makeError("central directory too small for " + Twine(entries) +
                     " entries");

  StringRef cd = file.substr(cdOffset, cdSize);
  std::vector<ZipMember> members;
  members.reserve(entries);
  uint64_t pos = 0;
  for (uint64_t i = 0; i < entries; ++i) {
    if (!inBounds(pos, kCentralHeaderSize, cd.size()) ||
        read32(cd, pos) != kCentralHeaderSig)
      return makeError("malformed central directory entry #" + Twine(i));
    ZipMember member;
    member.flags = read16(cd, pos + 8);
    member.method = read16(cd, pos + 10);
    member.crc = read32(cd, pos + 16);
    member.compressedSize = read32(cd, pos + 20);
    member.uncompressedSize = read32(cd, pos + 24);
    uint64_t nameLen = read16(cd, pos + 28);
    uint64_t extraLen = read16(cd, pos + 30);
    uint64_t commentLen = read16(cd, pos + 32);
    uint32_t diskStart = read16(cd, pos + 34);
    member.localHeaderOffset = read32(cd, pos + 42);
    uint64_t varLen = nameLen + extraLen + commentLen;
    if (!inBounds(pos + kCentralHeaderSize, varLen, cd.size()))
      return makeError("malformed central directory entry #" + Twine(i));
    member.name = cd.substr(pos + kCentralHeaderSize, nameLen).str();
    StringRef extra = cd.substr(pos + kCentralHeaderSize + nameLen, extraLen);
    if (Error err = applyZip64Extra(extra, member, diskStart))
      return prefixError(std::move(err), "member '" + member.name + "': ");
    if (diskStart != 0)
      return makeError("multi-disk ZIP archives are not supported");
    members.push_back(std::move(member));
    pos += kCentralHeaderSize + varLen;
  }
  return members;
}

/// Inflates a raw deflate stream into exactly `size` bytes.
static Error inflateRaw(StringRef input, uint64_t size, std::string &out) {
  // Deflate cannot expand data more than ~1032x; a larger declared size is
  // a lie and would only make us allocate absurd amounts of memory.
  if (size / 1032 > input.size() + 1)
    return makeError("implausible uncompressed size " + Twine(size));
  if (size > out.max_size())
    return makeError("uncompressed size too large");
  out.resize(size);

  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
    return makeError("cannot initialize zlib");

  // zlib counts in 32-bit uInt: feed both buffers in chunks.
  constexpr uint64_t kChunk = 1u << 30;
  uint64_t inUsed = 0, outUsed = 0;
  int ret = Z_OK;
  while (true) {
    if (zs.avail_in == 0 && inUsed < input.size()) {
      uint64_t n = std::min<uint64_t>(kChunk, input.size() - inUsed);
      zs.next_in =
          reinterpret_cast<Bytef *>(const_cast<char *>(input.data())) + inUsed;
      zs.avail_in = static_cast<uInt>(n);
      inUsed += n;
    }
    if (zs.avail_out == 0 && outUsed < size) {
      uint64_t n = std::min<uint64_t>(kChunk, size - outUsed);
      zs.next_out = reinterpret_cast<Bytef *>(&out[0]) + outUsed;
      zs.avail_out = static_cast<uInt>(n);
      outUsed += n;
    }
    ret = inflate(&zs, Z_NO_FLUSH);
    if (ret != Z_OK)
      break;
  }
  uint64_t produced = outUsed - zs.avail_out;
  std::string zmsg = zs.msg ? zs.msg : "";
  inflateEnd(&zs);

  if (ret == Z_STREAM_END) {
    if (produced != size)
      return makeError("decompressed size " + Twine(produced) +
                       " does not match declared size " + Twine(size));
    return Error::success();
  }
  if (ret == Z_BUF_ERROR) {
    // No progress possible: either input or output ran out.
    if (produced == size)
      return makeError("decompressed data is larger than declared size " +
                       Twine(size));
    return makeError("compressed data is truncated");
  }
  if (!zmsg.empty())
    zmsg = ": " + zmsg;
  return makeError("corrupt compressed data" + zmsg);
}

/// Returns the uncompressed bytes of a member, either as a view into `file`
/// (stored) or into `storage` (deflated), after checking its CRC.
/// The raw (possibly compressed) bytes of a member inside `file`.
static Expected<StringRef> locateMember(StringRef file,
                                        const ZipMember &member) {
  if (member.flags & 0x41)
    return makeError("encrypted members are not supported");
  uint64_t offset = member.localHeaderOffset;
  if (!inBounds(offset, kLocalHeaderSize, file.size()) ||
      read32(file, offset) != kLocalHeaderSig)
    return makeError("malformed local header");
  // Only the local name and extra lengths matter: the central directory is
  // authoritative for sizes and CRC (the local copies may be zero when a
  // data descriptor is used, or 0xFFFFFFFF with a zip64 extra field).
  uint64_t dataStart = offset + kLocalHeaderSize + read16(file, offset + 26) +
                       read16(file, offset + 28);
  if (!inBounds(dataStart, member.compressedSize, file.size()))
    return makeError("member data lies outside the file (truncated?)");
  return file.substr(dataStart, member.compressedSize);
}

static Expected<StringRef>
extractMember(StringRef file, const ZipMember &member, std::string &storage) {
  Expected<StringRef> located = locateMember(file, member);
  if (!located)
    return located.takeError();
  StringRef raw = *located;
  StringRef data;
  if (member.method == 0) {
    if (member.compressedSize != member.uncompressedSize)
      return makeError("stored member has compressed size " +
                       Twine(member.compressedSize) + " != uncompressed size " +
                       Twine(member.uncompressedSize));
    data = raw;
  } else if (member.method == 8) {
    if (Error err = inflateRaw(raw, member.uncompressedSize, storage))
      return std::move(err);
    data = storage;
  } else {
    return makeError("unsupported compression method " + Twine(member.method));
  }

  if (updateCrc(0, data) != member.crc)
    return makeError("CRC mismatch");
  return data;
}

/// An .npz member must be a `.npy` file named once (`seen`: the names so
/// far); `where` prefixes the error.
static Error checkMemberName(const ZipMember &member, StringSet<> &seen,
                             const std::string &where) {
  StringRef name(member.name);
  if (!name.ends_with(".npy"))
    return makeError(where + "not a .npy file");
  if (!seen.insert(name).second)
    return makeError(where + "duplicate member");
  return Error::success();
}

static Expected<std::vector<NpyArray>> readNpz(StringRef file, StringRef path) {
  std::string prefix = ("'" + path + "': ").str();
  Expected<std::vector<ZipMember>> members = readCentralDirectory(file);
  if (!members)
    return prefixError(members.takeError(), prefix);

  std::vector<NpyArray> arrays;
  StringSet<> seen;
  for (const ZipMember &member : *members) {
    std::string where = prefix + "member '" + member.name + "': ";
    if (Error err = checkMemberName(member, seen, where))
      return std::move(err);
    std::string storage;
    Expected<StringRef> data = extractMember(file, member, storage);
    if (!data)
      return prefixError(data.takeError(), where);
    Expected<NpyArray> array = parseNpyImpl(*data);
    if (!array)
      return prefixError(array.takeError(), where);
    array->name = StringRef(member.name).drop_back(4).str();
    arrays.push_back(std::move(*array));
  }
  if (arrays.empty())
    return makeError(prefix + "no arrays");
  return arrays;
}

Expected<std::vector<NpyArray>> readNpyOrNpz(StringRef path) {
  ErrorOr<std::unique_ptr<MemoryBuffer>> buffer =
      MemoryBuffer::getFile(path, /*IsText=*/false,
                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return makeError("cannot read '" + path +
                     "': " + buffer.getError().message());
  return parseNpyOrNpz((*buffer)->getBuffer(), path);
}

Expected<std::vector<NpyArray>> parseNpyOrNpz(StringRef bytes, StringRef what) {
  // Decide by content; the extension is only a hint for the error message.
  if (bytes.starts_with("\x93NUMPY")) {
    Expected<NpyArray> array = parseNpy(bytes, what);
    if (!array)
      return array.takeError();
    std::vector<NpyArray> arrays;
    arrays.push_back(std::move(*array));
    return arrays;
  }
  // An archive without members starts directly with the end record.
  if (bytes.starts_with("PK\x03\x04") || bytes.starts_with("PK\x05\x06"))
    return readNpz(bytes, what);
  if (sys::path::extension(what) == ".npz")
    return makeError("'" + what + "': not a ZIP archive (bad magic)");
  return makeError("'" + what +
                   "': not a .npy file or .npz archive (bad magic)");
}

//===----------------------------------------------------------------------===//
// Reading sample by sample
//===----------------------------------------------------------------------===//

NpySampleReader::~NpySampleReader() {
  if (file != sys::fs::kInvalidFile)
    sys::fs::closeFile(file);
}

Expected<std::unique_ptr<NpySampleReader>>
NpySampleReader::open(StringRef path) {
  // Large files are mapped: only the pages of the directory and the headers
  // are touched here, and the mapping is gone when open() returns.
  ErrorOr<std::unique_ptr<MemoryBuffer>> buffer =
      MemoryBuffer::getFile(path, /*IsText=*/false,
                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return makeError("cannot read '" + path +
                     "': " + buffer.getError().message());
  StringRef bytes = (*buffer)->getBuffer();
  std::unique_ptr<NpySampleReader> reader(new NpySampleReader);
  reader->path = path.str();
  std::string prefix = ("'" + path + "': ").str();

  // Records the array of the .npy image `image`, at `base` in the file.
  auto addArray = [&](StringRef image, uint64_t base, StringRef name,
                      std::optional<uint32_t> crc,
                      const Twine &where) -> Error {
    Expected<NpyHeader> header = parseNpyHeader(image);
    if (!header)
      return prefixError(header.takeError(), where);
    if (Error err = checkNpyDataSize(*header, image.size()))
      return prefixError(std::move(err), where);
    Location location;
    location.dataOffset = base + header->dataOffset;
    location.expectedCrc = crc;
    location.crc = updateCrc(0, image.take_front(header->dataOffset));
    NpyArray &array = header->array;
    if (!array.shape.empty() && array.shape[0] > 0)
      location.sampleBytes = header->dataBytes / uint64_t(array.shape[0]);
    array.name = name.str();
    reader->arrays.push_back(std::move(array));
    reader->locations.push_back(location);
    return Error::success();
  };

  if (bytes.starts_with("\x93NUMPY")) {
    if (Error err =
            addArray(bytes, 0, sys::path::stem(path), std::nullopt, prefix))
      return std::move(err);
  } else if (bytes.starts_with("PK\x03\x04") ||
             bytes.starts_with("PK\x05\x06")) {
    Expected<std::vector<ZipMember>> members = readCentralDirectory(bytes);
    if (!members)
      return prefixError(members.takeError(), prefix);
    // Deflated members cannot be read in place: the whole archive, in
    // memory.
    if (llvm::any_of(*members,
                     [](const ZipMember &m) { return m.method != 0; })) {
      Expected<std::vector<NpyArray>> arrays = parseNpyOrNpz(bytes, path);
      if (!arrays)
        return arrays.takeError();
      reader->arrays = std::move(*arrays);
      reader->inMemory = true;
      return reader;
    }
    StringSet<> seen;
    for (const ZipMember &member : *members) {
      std::string where = prefix + "member '" + member.name + "': ";
      if (Error err = checkMemberName(member, seen, where))
        return std::move(err);
      Expected<StringRef> raw = locateMember(bytes, member);
      if (!raw)
        return prefixError(raw.takeError(), where);
      if (member.compressedSize != member.uncompressedSize)
        return makeError(where + "stored member has compressed size " +
                         Twine(member.compressedSize) +
                         " != uncompressed size " +
                         Twine(member.uncompressedSize));
      uint64_t base = raw->data() - bytes.data();
      if (Error err = addArray(*raw, base, StringRef(member.name).drop_back(4),
                               member.crc, where))
        return std::move(err);
    }
    if (reader->arrays.empty())
      return makeError(prefix + "no arrays");
  } else {
    // Not a .npy or .npz: parseNpyOrNpz names the problem.
    return parseNpyOrNpz(bytes, path).takeError();
  }

  Expected<sys::fs::file_t> file = sys::fs::openNativeFileForRead(path);
  if (!file)
    return makeError("cannot read '" + path +
                     "': " + toString(file.takeError()));
  reader->file = *file;
  return reader;
}

Error NpySampleReader::readSample(size_t index, int64_t sample,
                                  NpyArray &into) {
  const NpyArray &array = arrays[index];
  if (array.shape.empty() || sample < 0 || sample >= array.shape[0])
    return makeError("'" + path + "': array '" + array.name +
                     "' has no sample " + Twine(sample));
  into.name = array.name;
  into.dtype = array.dtype;
  into.shape.assign(array.shape.begin() + 1, array.shape.end());
  if (inMemory) {
    size_t bytes = array.data.size() / size_t(array.shape[0]);
    into.data.assign(array.data.begin() + sample * bytes,
                     array.data.begin() + (sample + 1) * bytes);
    return Error::success();
  }
  Location &location = locations[index];
  into.data.resize(location.sampleBytes);
  MutableArrayRef<char> buffer(reinterpret_cast<char *>(into.data.data()),
                               into.data.size());
  uint64_t offset =
      location.dataOffset + uint64_t(sample) * location.sampleBytes;
  while (!buffer.empty()) {
    Expected<size_t> read = sys::fs::readNativeFileSlice(file, buffer, offset);
    if (!read)
      return makeError("cannot read '" + path +
                       "': " + toString(read.takeError()));
    if (*read == 0)
      return makeError("'" + path + "': array '" + array.name +
                       "': the file ends inside sample " + Twine(sample) +
                       " (truncated?)");
    buffer = buffer.drop_front(*read);
    offset += *read;
  }
  // The checksum covers the member when its samples are read in order.
  if (sample == location.nextSample) {
    location.crc =
        updateCrc(location.crc,
                  StringRef(reinterpret_cast<const char *>(into.data.data()),
                            into.data.size()));
    ++location.nextSample;
  }
  return Error::success();
}

Error NpySampleReader::verifyChecksums() const {
  for (auto [array, location] : llvm::zip(arrays, locations)) {
    if (!location.expectedCrc || array.shape.empty() ||
        location.nextSample != array.shape[0])
      continue;
    if (location.crc != *location.expectedCrc)
      return makeError("'" + path + "': member '" + array.name +
                       ".npy': CRC mismatch");
  }
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

/// The .npy preamble (magic, version, length, dict) numpy would write.
static std::string makeNpyHeader(const NpyArray &array) {
  std::string dict;
  raw_string_ostream os(dict);
  os << "{'descr': '" << getNpyDescr(array.dtype)
     << "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < array.shape.size(); ++i)
    os << (i ? ", " : "") << array.shape[i];
  // A one-element Python tuple needs a trailing comma.
  os << (array.shape.size() == 1 ? ",), }" : "), }");

  // Pad with spaces and a newline so the data starts 64-byte aligned.
  // Version 2.0 only for the (absurd) case of a header over 64 KiB.
  constexpr size_t kAlign = 64;
  size_t preamble = 6 + 2 + 2;
  bool v2 = dict.size() + preamble + kAlign > 0xFFFF;
  if (v2)
    preamble += 2;
  size_t unpadded = preamble + dict.size() + 1;
  dict.append((kAlign - unpadded % kAlign) % kAlign, ' ');
  dict.push_back('\n');

  std::string out("\x93NUMPY", 6);
  out.push_back(v2 ? 2 : 1);
  out.push_back(0);
  raw_string_ostream hs(out);
  support::endian::Writer writer(hs, endianness::little);
  if (v2)
    writer.write<uint32_t>(static_cast<uint32_t>(dict.size()));
  else
    writer.write<uint16_t>(static_cast<uint16_t>(dict.size()));
  out += dict;
  return out;
}

std::string serializeNpy(const NpyArray &array) {
  std::string out = makeNpyHeader(array);
  out.append(array.data.begin(), array.data.end());
  return out;
}

Error writeNpz(StringRef path, ArrayRef<NpyArray> arrays) {
  auto fail = [&](const Twine &msg) {
    return makeError("cannot write '" + path + "': " + msg);
  };

  // Validate and lay out everything before touching the file system.
  struct Entry {
    std::string name;
    std::string header;
    const NpyArray *array;
    uint32_t crc;
    uint64_t size;
    uint64_t offset;
  };
  std::vector<Entry> entries;
  StringSet<> seen;
  uint64_t offset = 0, cdSize = 0;
  for (const NpyArray &array : arrays) {
    std::optional<uint64_t> count = countElements(array.shape);
    uint64_t elemSize = getNpyElementSize(array.dtype);
    if (!count || *count > UINT64_MAX / elemSize)
      return fail("array '" + array.name + "': invalid shape");
    if (*count * elemSize != array.data.size())
      return fail("array '" + array.name + "': shape needs " +
                  Twine(*count * elemSize) + " bytes but data has " +
                  Twine(array.data.size()));
    Entry entry;
    entry.name = array.name + ".npy";
    if (!seen.insert(entry.name).second)
      return fail("duplicate array name '" + array.name + "'");
    if (entry.name.size() > 0xFFFF)
      return fail("array name too long");
    entry.header = makeNpyHeader(array);
    entry.array = &array;
    StringRef data(reinterpret_cast<const char *>(array.data.data()),
                   array.data.size());
    entry.crc = updateCrc(updateCrc(0, entry.header), data);
    entry.size = entry.header.size() + data.size();
    entry.offset = offset;
    offset += kLocalHeaderSize + entry.name.size() + entry.size;
    cdSize += kCentralHeaderSize + entry.name.size();
    entries.push_back(std::move(entry));
  }
  // Without zip64 every size and offset must fit in 32 bits (0xFFFFFFFF
  // itself means "see zip64 extra field").
  if (entries.size() >= 0xFFFF ||
      offset + cdSize + kEndRecordSize >= 0xFFFFFFFFull)
    return fail("archive would exceed 4 GiB (ZIP64 output is not supported)");

  // Readers never see a partial archive.
  return writeFileAtomically(path, [&](raw_ostream &os) {
    support::endian::Writer w(os, endianness::little);
    // Fixed DOS timestamp (1980-01-01 00:00) keeps output deterministic.
    constexpr uint16_t kDosTime = 0, kDosDate = (1 << 5) | 1;
    constexpr uint16_t kVersion = 20;
    auto nameFlags = [](StringRef name) -> uint16_t {
      // Bit 11: the name is UTF-8.
      return llvm::any_of(name, [](char c) { return c & 0x80; }) ? 0x800 : 0;
    };
    for (const Entry &e : entries) {
      w.write<uint32_t>(kLocalHeaderSig);
      w.write<uint16_t>(kVersion);
      w.write<uint16_t>(nameFlags(e.name));
      w.write<uint16_t>(0); // stored
      w.write<uint16_t>(kDosTime);
      w.write<uint16_t>(kDosDate);
      w.write<uint32_t>(e.crc);
      w.write<uint32_t>(static_cast<uint32_t>(e.size));
      w.write<uint32_t>(static_cast<uint32_t>(e.size));
      w.write<uint16_t>(static_cast<uint16_t>(e.name.size()));
      w.write<uint16_t>(0);
      os << e.name << e.header;
      os.write(reinterpret_cast<const char *>(e.array->data.data()),
               e.array->data.size());
    }
    for (const Entry &e : entries) {
      w.write<uint32_t>(kCentralHeaderSig);
      w.write<uint16_t>(kVersion); // made by
      w.write<uint16_t>(kVersion); // needed
      w.write<uint16_t>(nameFlags(e.name));
      w.write<uint16_t>(0);
      w.write<uint16_t>(kDosTime);
      w.write<uint16_t>(kDosDate);
      w.write<uint32_t>(e.crc);
      w.write<uint32_t>(static_cast<uint32_t>(e.size));
      w.write<uint32_t>(static_cast<uint32_t>(e.size));
      w.write<uint16_t>(static_cast<uint16_t>(e.name.size()));
      w.write<uint16_t>(0); // extra
      w.write<uint16_t>(0); // comment
      w.write<uint16_t>(0); // disk
      w.write<uint16_t>(0); // internal attributes
      w.write<uint32_t>(0); // external attributes
      w.write<uint32_t>(static_cast<uint32_t>(e.offset));
      os << e.name;
    }
    w.write<uint32_t>(kEndRecordSig);
    w.write<uint16_t>(0);
    w.write<uint16_t>(0);
    w.write<uint16_t>(static_cast<uint16_t>(entries.size()));
    w.write<uint16_t>(static_cast<uint16_t>(entries.size()));
    w.write<uint32_t>(static_cast<uint32_t>(cdSize));
    w.write<uint32_t>(static_cast<uint32_t>(offset));
    w.write<uint16_t>(0);
    return Error::success();
  });
}

} // namespace qnt
