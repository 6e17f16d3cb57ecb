# ctest fixtures for a throw-away single-node Ceph cluster (ceph-cluster.sh beside this file).
#
#   qb_add_ceph_cluster_fixture(FIXTURE DIR)
#
# adds two tests, <FIXTURE>_start (FIXTURES_SETUP) and <FIXTURE>_stop (FIXTURES_CLEANUP), so a
# ctest run starts the cluster once before the first test that declares FIXTURES_REQUIRED
# <FIXTURE> and always stops it (daemons killed by PID, DIR removed) after the last, also when
# tests fail. Tests find the cluster through the environment: give them
# `ENVIRONMENT QB_CEPH_DIR=<DIR>` (DIR/ceph.conf, DIR/keyring for client.admin).
# Each fixture needs its own DIR (each cluster picks its own free port on 127.0.0.1).
set(QB_CEPH_CLUSTER_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/ceph-cluster.sh)

function(qb_add_ceph_cluster_fixture fixture dir)
  add_test(NAME ${fixture}_start COMMAND ${QB_CEPH_CLUSTER_SCRIPT} start ${dir})
  set_tests_properties(${fixture}_start PROPERTIES FIXTURES_SETUP ${fixture} LABELS ceph
                                                   TIMEOUT 180)
  add_test(NAME ${fixture}_stop COMMAND ${QB_CEPH_CLUSTER_SCRIPT} stop ${dir})
  set_tests_properties(${fixture}_stop PROPERTIES FIXTURES_CLEANUP ${fixture} LABELS ceph
                                                  TIMEOUT 60)
endfunction()
