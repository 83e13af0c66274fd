// The subgroup kernels' rows: a workgroup computes `RPW` consecutive rows, one subgroup per row
// at a time. Subgroups may have any size the device allows (4 on SwiftShader, 4 to 8 on
// lavapipe, 32 on NVIDIA, up to 64 on AMD), and WGSL does not say how invocations are grouped
// into them, so each subgroup takes a dense index from a workgroup counter (its first active
// lane, the leader, draws; `subgroupBroadcastFirst` shares it) and, after a barrier, every
// subgroup knows how many there are: subgroup `s` of `c` takes the workgroup's rows `s`,
// `s + c`, ... in turn. Returns `(s, c, leader)`; `lane` is the `subgroup_invocation_id`, `li`
// the `local_invocation_index`. (`subgroupElect` would say who leads, but naga does not have
// it.) The counter is zeroed explicitly: lavapipe does not zero workgroup memory for naga.
var<workgroup> sg_count: atomic<u32>;
fn subgroup_slot(lane: u32, li: u32) -> vec3<u32> {
    if (li == 0u) { atomicStore(&sg_count, 0u); }
    workgroupBarrier();
    let leader = subgroupBroadcastFirst(lane);
    var i = 0u;
    if (lane == leader) { i = atomicAdd(&sg_count, 1u); }
    let s = subgroupBroadcastFirst(i);
    workgroupBarrier();
    return vec3<u32>(s, atomicLoad(&sg_count), leader);
}
