# CMake toolchain file: cross-build for AArch64 Linux with Debian's
# g++-aarch64-linux-gnu against a sysroot of Debian arm64 packages made by
# scripts/aarch64-sysroot.sh (oneDNN, XNNPACK, pthreadpool, cpuinfo, libgomp).
#
#   scripts/aarch64-sysroot.sh
#   cmake -G Ninja -S runtime -B build-aarch64/runtime \
#     -DCMAKE_TOOLCHAIN_FILE=$PWD/cmake/aarch64-linux-gnu.cmake
# (an absolute path: CMake looks up a relative one in the build directory)
#
# Run a target binary with
#   qemu-aarch64 -L /usr/aarch64-linux-gnu \
#     -E LD_LIBRARY_PATH=<dir of libqnt_runtime.so>:<sysroot>/usr/lib/aarch64-linux-gnu
# (or QEMU_LD_PREFIX / QEMU_SET_ENV): libqnt_runtime.so gets no RPATH to the
# sysroot, since CMake strips the sysroot prefix from RPATH entries.
#
# QNT_AARCH64_SYSROOT (cache variable, else the environment variable of that
# name, else <repo>/build-aarch64/sysroot) is the sysroot.
#
# The sysroot holds only the unpacked arm64 packages: libc, libstdc++, libgcc
# and libgomp come from the cross toolchain (/usr/aarch64-linux-gnu and
# /usr/lib/gcc-cross/aarch64-linux-gnu/12), which gcc finds relative to its
# own prefix, not to --sysroot. Passing the package tree as --sysroot
# (CMAKE_SYSROOT) is what keeps the host's amd64 /usr/include out of the
# header search: Debian's cross gcc otherwise searches /usr/include last.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(_qnt_triple aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${_qnt_triple}-gcc)
set(CMAKE_CXX_COMPILER ${_qnt_triple}-g++)

if(NOT QNT_AARCH64_SYSROOT AND DEFINED ENV{QNT_AARCH64_SYSROOT})
  get_filename_component(QNT_AARCH64_SYSROOT "$ENV{QNT_AARCH64_SYSROOT}"
                         ABSOLUTE BASE_DIR "$ENV{PWD}")
endif()
if(NOT QNT_AARCH64_SYSROOT)
  get_filename_component(QNT_AARCH64_SYSROOT
                         "${CMAKE_CURRENT_LIST_DIR}/../build-aarch64/sysroot"
                         ABSOLUTE)
endif()
# (A relative -DQNT_AARCH64_SYSROOT=... is made absolute against the current
# directory by the PATH type.)
set(QNT_AARCH64_SYSROOT "${QNT_AARCH64_SYSROOT}" CACHE PATH
    "Sysroot of Debian arm64 packages (scripts/aarch64-sysroot.sh)")
if(NOT EXISTS "${QNT_AARCH64_SYSROOT}/usr/lib/${_qnt_triple}")
  message(FATAL_ERROR
    "QNT_AARCH64_SYSROOT=${QNT_AARCH64_SYSROOT} is not an aarch64 sysroot "
    "(no usr/lib/${_qnt_triple}); create it with scripts/aarch64-sysroot.sh")
endif()
# try_compile projects re-read this file: hand them the same sysroot.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES QNT_AARCH64_SYSROOT)

set(CMAKE_SYSROOT "${QNT_AARCH64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${QNT_AARCH64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The linker resolves the DT_NEEDED entries of the sysroot's libraries
# (libXNNPACK -> libcpuinfo, libpthreadpool -> libpthread, ...) only through
# -rpath-link here: with --sysroot its default directories are inside the
# sysroot, which has no libc.
set(_qnt_rpath_link
    "-Wl,-rpath-link,${QNT_AARCH64_SYSROOT}/usr/lib/${_qnt_triple}:/usr/${_qnt_triple}/lib")
foreach(_kind EXE SHARED MODULE)
  set(CMAKE_${_kind}_LINKER_FLAGS_INIT "${_qnt_rpath_link}")
endforeach()

# pkg-config (not used by runtime/, but by anything that might build on top).
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${QNT_AARCH64_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR}
    "${QNT_AARCH64_SYSROOT}/usr/lib/${_qnt_triple}/pkgconfig:${QNT_AARCH64_SYSROOT}/usr/share/pkgconfig")

# try_run / ctest / add_test run target binaries under qemu-user.
find_program(QNT_QEMU_AARCH64 qemu-aarch64)
if(QNT_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR
      "${QNT_QEMU_AARCH64};-L;/usr/${_qnt_triple};-E;LD_LIBRARY_PATH=${QNT_AARCH64_SYSROOT}/usr/lib/${_qnt_triple}")
endif()
