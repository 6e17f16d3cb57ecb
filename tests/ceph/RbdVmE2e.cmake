# ctest rbd_vm_e2e (labels ceph;vm): a QEMU guest whose data LUN is an RBD image, snapshotted
# by quiesced's rbd backend under the record workload, exported and verified
# (tests/ceph/rbd-vm-e2e.sh). Boots a VM: RESOURCE_LOCK qb_vm, TIMEOUT; skipped (77) without
# root, QEMU, QEMU's rbd driver (qemu-block-extra) or Ceph.
#
#   qb_add_rbd_vm_e2e_test(FIXTURE DIR)   # runs on the cluster of qb_add_ceph_cluster_fixture
#
# Not under the sanitizers (the guest needs the plain static workload; CI runs -LE vm there).
function(qb_add_rbd_vm_e2e_test fixture dir)
  if(QB_SANITIZE OR NOT TARGET quiesce-agent)
    return()
  endif()
  add_test(NAME rbd_vm_e2e
    COMMAND ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/rbd-vm-e2e.sh $<TARGET_FILE:quiesced>
            $<TARGET_FILE:quiescectl> $<TARGET_FILE:quiesce-agent>
            $<TARGET_FILE:qb-recordwriter> $<TARGET_FILE:qb-verify-records>)
  set_tests_properties(rbd_vm_e2e PROPERTIES
    LABELS "ceph;vm"
    SKIP_RETURN_CODE 77
    TIMEOUT 600
    RESOURCE_LOCK qb_vm
    FIXTURES_REQUIRED ${fixture}
    ENVIRONMENT QB_CEPH_DIR=${dir})
endfunction()
