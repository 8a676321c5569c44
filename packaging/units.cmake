# packaging/units.cmake: the systemd units, tmpfiles.d and sysusers.d files
# with the paths of one install prefix.  Used at install time (so
# `cmake --install build --prefix P` gets P's paths, not the configure-time
# prefix) and by the docs test:
#   cmake -DSTB_PREFIX=P -DSTB_SBINDIR=sbin -DSTB_SRC=SRC -DSTB_OUT=DIR -P units.cmake
# SYSCONFDIR follows GNUInstallDirs: /etc for the prefixes / and /usr,
# /etc/opt/... for /opt/..., PREFIX/etc otherwise.
foreach(_v STB_PREFIX STB_SBINDIR STB_SRC STB_OUT)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "units.cmake: ${_v} is not set")
  endif()
endforeach()
string(REGEX REPLACE "/+$" "" _prefix "${STB_PREFIX}")
if(_prefix STREQUAL "" OR _prefix STREQUAL "/usr")
  set(SYSCONFDIR "/etc")
elseif(_prefix MATCHES "^/opt/")
  set(SYSCONFDIR "/etc${_prefix}")
else()
  set(SYSCONFDIR "${_prefix}/etc")
endif()
if(IS_ABSOLUTE "${STB_SBINDIR}")
  set(SBINDIR "${STB_SBINDIR}")
else()
  set(SBINDIR "${_prefix}/${STB_SBINDIR}")
endif()
file(GLOB _units "${STB_SRC}/packaging/systemd/*.service.in")
set(STB_UNIT_FILES)
foreach(_in ${_units})
  get_filename_component(_name "${_in}" NAME_WLE)
  configure_file("${_in}" "${STB_OUT}/systemd/${_name}" @ONLY)
  list(APPEND STB_UNIT_FILES "${STB_OUT}/systemd/${_name}")
endforeach()
configure_file("${STB_SRC}/packaging/tmpfiles.d/stbcred.conf.in" "${STB_OUT}/tmpfiles.d/stbcred.conf"
               @ONLY)
configure_file("${STB_SRC}/packaging/sysusers.d/stbcred.conf" "${STB_OUT}/sysusers.d/stbcred.conf"
               COPYONLY)
