# install(): the file-system layout the Debian and RPM packages ship (packaging/).
# Configured with -DCMAKE_INSTALL_PREFIX=/usr (so GNUInstallDirs puts config in /etc),
# `DESTDIR=... cmake --install build` produces it:
#   /usr/sbin/tern-{authd,deliverd,smtpd,imapd,pop3d}, /usr/sbin/ternctl
#   /usr/sbin/sendmail, /usr/bin/{mailq,newaliases} -> ../sbin/sendmail, /usr/lib/sendmail
#   /etc/tern/{tern.conf,conf.d/}, systemd units, sysusers.d, tmpfiles.d, fail2ban files.
# Components name the binary packages (core, mta, deliverd, imapd, pop3d).
include(GNUInstallDirs)

set(TERN_PKG_DIR ${CMAKE_SOURCE_DIR}/packaging)
# Relative paths are relative to the prefix at install time; the Debian build passes
# /lib/systemd/system (Debian 12 is not usr-merged for packages).
# Both may be given with -D; the defaults follow the prefix (not cached, so a later
# -DCMAKE_INSTALL_PREFIX change is followed).
if(NOT DEFINED TERN_SYSTEMD_UNIT_DIR)
  set(TERN_SYSTEMD_UNIT_DIR "lib/systemd/system")
endif()
if(NOT DEFINED TERN_SYSCONF_DIR)
  set(TERN_SYSCONF_DIR "${CMAKE_INSTALL_FULL_SYSCONFDIR}") # /etc for the /usr prefix
endif()

function(tern_install_daemon target component)
  if(TARGET ${target})
    install(TARGETS ${target} RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT ${component})
    if(EXISTS ${TERN_PKG_DIR}/systemd/${target}.service)
      install(FILES ${TERN_PKG_DIR}/systemd/${target}.service
        DESTINATION ${TERN_SYSTEMD_UNIT_DIR} COMPONENT ${component})
    endif()
  endif()
endfunction()

tern_install_daemon(tern-authd core)
tern_install_daemon(tern-deliverd deliverd)
tern_install_daemon(tern-smtpd mta)
tern_install_daemon(tern-imapd imapd)
tern_install_daemon(tern-pop3d pop3d)

if(TARGET ternctl)
  install(TARGETS ternctl RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT core)
endif()

if(TARGET sendmail)
  install(TARGETS sendmail RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT mta)
  install(CODE "
    foreach(link bin/mailq bin/newaliases lib/sendmail)
      get_filename_component(d \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/\${link}\" DIRECTORY)
      file(MAKE_DIRECTORY \"\${d}\")
      file(CREATE_LINK ../sbin/sendmail \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/\${link}\" SYMBOLIC)
      message(STATUS \"Installing: \$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/\${link} -> ../sbin/sendmail\")
    endforeach()" COMPONENT mta)
endif()

# Base config, system users, runtime dir (tern-core).
install(FILES ${TERN_PKG_DIR}/conf/tern.conf DESTINATION ${TERN_SYSCONF_DIR}/tern COMPONENT core)
install(DIRECTORY DESTINATION ${TERN_SYSCONF_DIR}/tern/conf.d COMPONENT core)
install(FILES ${TERN_PKG_DIR}/conf/tern-sysusers.conf
  DESTINATION lib/sysusers.d RENAME tern.conf COMPONENT core)
install(FILES ${TERN_PKG_DIR}/conf/tern-tmpfiles.conf
  DESTINATION lib/tmpfiles.d RENAME tern.conf COMPONENT core)
install(PROGRAMS ${TERN_PKG_DIR}/conf/tern-make-cert
  DESTINATION ${CMAKE_INSTALL_DATADIR}/tern COMPONENT core)

# fail2ban filters and an example jail (disabled by default).
install(FILES ${CMAKE_SOURCE_DIR}/smtpd/fail2ban/tern-smtpd.conf
  DESTINATION ${TERN_SYSCONF_DIR}/fail2ban/filter.d COMPONENT mta)
install(FILES ${TERN_PKG_DIR}/fail2ban/filter.d/tern-login.conf
  DESTINATION ${TERN_SYSCONF_DIR}/fail2ban/filter.d COMPONENT core)
install(FILES ${TERN_PKG_DIR}/fail2ban/jail.d/tern.conf
  DESTINATION ${TERN_SYSCONF_DIR}/fail2ban/jail.d COMPONENT core)
