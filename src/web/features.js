// The WebGPU features Hearth's kernels use that wgpu's WebGPU backend never requests.
//
// wgpu creates the page's device with the features it knows how to map, and 'subgroups' is not
// one of them, so a device it creates never has subgroups even where the adapter offers them.
// While Hearth creates its device, `askForSubgroups` wraps `GPUAdapter.prototype.requestDevice`
// so that the request also names 'subgroups' when the adapter has it, and records what the
// device was granted; the returned function puts the original back at once (other code on the
// page is affected only during that await). `grantedSubgroups` then says whether the device has
// subgroups, and their sizes (`GPUAdapterInfo.subgroupMinSize` / `subgroupMaxSize`, or every
// size WebGPU allows where the browser does not say).

let granted = null;

export function askForSubgroups() {
  granted = null;
  const proto = globalThis.GPUAdapter && globalThis.GPUAdapter.prototype;
  if (!proto || typeof proto.requestDevice !== 'function') return () => {};
  const original = proto.requestDevice;
  proto.requestDevice = async function (descriptor) {
    const wanted = { ...(descriptor || {}) };
    const features = [...(wanted.requiredFeatures || [])];
    const offered = this.features && this.features.has('subgroups');
    if (offered && !features.includes('subgroups')) features.push('subgroups');
    wanted.requiredFeatures = features;
    const device = await original.call(this, wanted);
    if (device && device.features && device.features.has('subgroups')) {
      const info = this.info || {};
      const size = (v, d) => (Number.isInteger(v) && v > 0 ? v : d);
      granted = { minSize: size(info.subgroupMinSize, 4), maxSize: size(info.subgroupMaxSize, 128) };
    }
    return device;
  };
  return () => {
    if (proto.requestDevice !== original) proto.requestDevice = original;
  };
}

export function grantedSubgroups() {
  return granted;
}
