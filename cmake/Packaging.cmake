# Installation and the Debian packages (issue 22), built with `cpack -G DEB` in the build tree:
#   qianmian               (component server): /usr/bin/qianmian, qianmian-serve.service, the default
#                          configuration in /etc/qianmian (a conffile), the `qianmian` user and
#                          /var/lib/qianmian made by its postinst; dependencies from dpkg-shlibdeps.
#   libqianmian-client-dev (component client): the client library, its headers and the CMake package
#                          (client/CMakeLists.txt).
set(QM_PACKAGING ${PROJECT_SOURCE_DIR}/packaging)
# `cmake --install` and cpack install what is built and build nothing (the package test reuses
# the built tree; the Dockerfile builds only the program and the client library).
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
install(TARGETS qianmian RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
install(FILES ${QM_PACKAGING}/qianmian-serve.service DESTINATION /lib/systemd/system COMPONENT server)
install(FILES ${QM_PACKAGING}/qianmian.toml DESTINATION /etc/qianmian COMPONENT server)
install(FILES ${QM_PACKAGING}/qianmian.default DESTINATION /etc/default RENAME qianmian COMPONENT server)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT server)
# The operator console's files (serve finds them at <prefix>/share/qianmian/console).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/console/ DESTINATION ${CMAKE_INSTALL_DATADIR}/qianmian/console COMPONENT server
        PATTERN "*.md" EXCLUDE)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME qianmian)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "qianmian maintainers <qianmian@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "recommendation and content ranking for retail banks")
# Staged with DESTDIR, so the absolute destinations (/etc, /lib/systemd) land in the package.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server client)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # dependencies on Debian's runtime libraries, from the ELF files
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_SERVER_PACKAGE_NAME qianmian)
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "passwd, tzdata")  # useradd in postinst; time zones at run time
set(CPACK_DEBIAN_SERVER_PACKAGE_SUGGESTS "redis-server")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
  ${QM_PACKAGING}/postinst ${QM_PACKAGING}/prerm ${QM_PACKAGING}/postrm ${QM_PACKAGING}/conffiles)
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_CLIENT_PACKAGE_NAME libqianmian-client-dev)
set(CPACK_DEBIAN_CLIENT_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_CLIENT_DESCRIPTION "qianmian client library for C++ (find_package(qianmian), qianmian::client)")
include(CPack)
