#!/usr/bin/env python3
"""Builds the small sysfs trees the inventory tests read (run once; the output is committed).

The layout follows real sysfs on a QEMU guest (Debian 12 cloud kernel): /sys/dev/block/MAJ:MIN
and /sys/block/NAME are symlinks into /sys/devices; partitions are subdirectories of their disk
with a `partition` file; dm/md devices live in /sys/devices/virtual/block with `slaves/`
symlinks; SCSI disks have `device/` -> the SCSI device with vendor, model, wwid and binary
vpd_pg80 / vpd_pg83; virtio-blk disks have a `serial` file. VPD 0x83 content is modeled on what
QEMU's scsi-disk emits (an ASCII vendor-specific designator, then a binary NAA designator from
`wwn=`, then the target port's NAA). These trees are hand-built, not captured: a later VM issue
captures real ones from the test VM and should replace them.
"""
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def write(root, rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)


def link(root, rel, target):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(os.path.relpath(os.path.join(root, target), os.path.dirname(path)), path)


def designator(code_set, association, dtype, payload):
    return bytes([code_set, (association << 4) | dtype, 0, len(payload)]) + payload


def vpd83(*designators):
    body = b"".join(designators)
    return bytes([0, 0x83]) + struct.pack(">H", len(body)) + body


def vpd80(serial):
    s = serial.encode()
    return bytes([0, 0x80]) + struct.pack(">H", len(s)) + s


def scsi_disk(root, name, major, minor_base, hctl, pci, virtio, sectors, vendor, model,
              pg83=None, pg80=None, wwid=None, partitions=()):
    host = "host" + hctl.split(":")[0]
    target = "target" + ":".join(hctl.split(":")[:3])
    sdev = f"devices/pci0000:00/{pci}/{virtio}/{host}/{target}/{hctl}"
    disk = f"{sdev}/block/{name}"
    write(root, f"{sdev}/vendor", vendor + "\n")
    write(root, f"{sdev}/model", model + "\n")
    if pg83 is not None:
        write(root, f"{sdev}/vpd_pg83", pg83)
    if pg80 is not None:
        write(root, f"{sdev}/vpd_pg80", pg80)
    if wwid is not None:
        write(root, f"{sdev}/wwid", wwid + "\n")
    link(root, f"{sdev}/subsystem", "bus/scsi")
    write(root, f"{disk}/size", f"{sectors}\n")
    write(root, f"{disk}/dev", f"{major}:{minor_base}\n")
    link(root, f"{disk}/device", sdev)
    link(root, f"block/{name}", disk)
    link(root, f"dev/block/{major}:{minor_base}", disk)
    for number, part_sectors in partitions:
        part = f"{disk}/{name}{number}"
        write(root, f"{part}/partition", f"{number}\n")
        write(root, f"{part}/size", f"{part_sectors}\n")
        write(root, f"{part}/dev", f"{major}:{minor_base + number}\n")
        link(root, f"dev/block/{major}:{minor_base + number}", part)
    return disk


def virtual_block(root, name, major, minor, slaves, extra=None):
    dev = f"devices/virtual/block/{name}"
    write(root, f"{dev}/dev", f"{major}:{minor}\n")
    write(root, f"{dev}/size", "1048576\n")
    for slave_name, slave_path in slaves:
        link(root, f"{dev}/slaves/{slave_name}", slave_path)
    for rel, data in (extra or {}).items():
        write(root, f"{dev}/{rel}", data)
    link(root, f"block/{name}", dev)
    link(root, f"dev/block/{major}:{minor}", dev)


def virtio_scsi(root):
    os.makedirs(os.path.join(root, "bus/scsi"), exist_ok=True)
    # sda: QEMU scsi-hd with wwn=0x5000c500a1b2c3d4, serial=LUN0001, port_wwn set.
    sda = scsi_disk(
        root, "sda", 8, 0, "0:0:0:0", "0000:00:04.0", "virtio1", 2097152, "QEMU",
        "QEMU HARDDISK",
        pg83=vpd83(designator(2, 0, 0, b"LUN0001"),
                   designator(1, 0, 3, bytes.fromhex("5000c500a1b2c3d4")),
                   designator(1, 1, 3, bytes.fromhex("5000c500ffff0001"))),
        pg80=vpd80("LUN0001"), wwid="naa.5000c500a1b2c3d4",
        partitions=[(1, 204800), (2, 1800000)])
    # sdb: only a T10 vendor id and an EUI-64 (no NAA): the EUI-64 is chosen.
    sdb = scsi_disk(
        root, "sdb", 8, 16, "0:0:0:1", "0000:00:04.0", "virtio1", 1048576, "ACME",
        "ArrayLUN",
        pg83=vpd83(designator(2, 0, 1, b"ACME    ArrayLUN 0002"),
                   designator(1, 0, 2, bytes.fromhex("0025388b71c0d0a1"))),
        pg80=vpd80("  SER-B-0002  "), partitions=[(1, 1040000)])
    # sdc: no VPD pages at all, only the kernel's wwid attribute.
    sdc = scsi_disk(
        root, "sdc", 8, 32, "0:0:0:2", "0000:00:04.0", "virtio1", 1048576, "LIO-ORG",
        "block0", wwid="naa.6001405ABCDEF0123456789ABCDEF012", partitions=[(1, 1040000)])
    # dm-0 (LVM vg-data) on sda2; md0 (RAID1) on sdb1 + sdc1.
    virtual_block(root, "dm-0", 253, 0, [("sda2", f"{sda}/sda2")],
                  {"dm/name": "vg-data\n", "dm/uuid": "LVM-abc\n"})
    virtual_block(root, "md0", 9, 0, [("sdb1", f"{sdb}/sdb1"), ("sdc1", f"{sdc}/sdc1")],
                  {"md/level": "raid1\n"})
    write(root, "../virtio-scsi.mountinfo",
          "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
          "23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n"
          "24 22 0:22 / /run rw shared:7 - tmpfs tmpfs rw\n"
          "30 22 253:0 / /srv/data rw,relatime shared:5 - xfs /dev/mapper/vg-data rw\n"
          "31 22 9:0 / /srv/raid rw,relatime shared:6 - ext4 /dev/md0 rw\n"
          "32 22 253:0 /exports /export rw,relatime shared:5 - xfs /dev/mapper/vg-data rw\n")


def virtio_blk(root):
    os.makedirs(os.path.join(root, "bus/virtio"), exist_ok=True)
    vdev = "devices/pci0000:00/0000:00:05.0/virtio2"
    disk = f"{vdev}/block/vda"
    link(root, f"{vdev}/subsystem", "bus/virtio")
    write(root, f"{vdev}/device", "0x0002\n")
    write(root, f"{vdev}/vendor", "0x1af4\n")
    write(root, f"{disk}/size", "4194304\n")
    write(root, f"{disk}/serial", "VBLK-SERIAL-42\n")
    write(root, f"{disk}/dev", "254:0\n")
    link(root, f"{disk}/device", vdev)
    link(root, "block/vda", disk)
    link(root, "dev/block/254:0", disk)
    write(root, f"{disk}/vda1/partition", "1\n")
    write(root, f"{disk}/vda1/size", "4192256\n")
    link(root, "dev/block/254:1", f"{disk}/vda1")
    write(root, "../virtio-blk.mountinfo",
          "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
          "23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n")


def main():
    for name, build in (("sysfs-virtio-scsi", virtio_scsi), ("sysfs-virtio-blk", virtio_blk)):
        root = os.path.join(HERE, name)
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        build(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
