//===- AtomicFile.cpp - Write a file completely or not at all -------------===//

#include "qnt/Support/AtomicFile.h"

#include "llvm/Support/FileSystem.h"

using namespace llvm;

Error qnt::writeFileAtomically(StringRef path,
                               function_ref<Error(raw_ostream &)> write) {
  auto fail = [&](const Twine &message) {
    return createStringError(inconvertibleErrorCode(),
                             "cannot write '" + path + "': " + message);
  };
  // Runs `write` on `os`, then reports its error or the stream's (cleared:
  // raw_fd_ostream aborts on destruction with an unchecked error).
  auto writeTo = [&](raw_fd_ostream &os) -> Error {
    Error error = write(os);
    os.flush();
    std::error_code ec = os.error();
    os.clear_error();
    if (error)
      return error;
    return ec ? fail(ec.message()) : Error::success();
  };

  sys::fs::file_status status;
  if (!sys::fs::status(path, status) &&
      status.type() != sys::fs::file_type::regular_file) {
    std::error_code ec;
    raw_fd_ostream os(path, ec, sys::fs::OF_None);
    if (ec)
      return fail(ec.message());
    return writeTo(os);
  }

  Expected<sys::fs::TempFile> temp =
      sys::fs::TempFile::create(path + ".tmp-%%%%%%%%");
  if (!temp)
    return fail(toString(temp.takeError()));
  {
    raw_fd_ostream os(temp->FD, /*shouldClose=*/false);
    if (Error error = writeTo(os)) {
      consumeError(temp->discard());
      return error;
    }
  }
  if (Error error = temp->keep(path)) {
    std::string message = toString(std::move(error));
    consumeError(temp->discard());
    return fail(message);
  }
  return Error::success();
}
