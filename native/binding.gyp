# mdgpu_native: Linux syscalls Node lacks (fd passing, memfd, mmap, eventfd,
# uv_poll, prctl); Linux only. Built by `npm install` (package.json "install" script runs
# `node-gyp rebuild --directory native`); output native/build/Release/mdgpu_native.node.
{
  'targets': [
    {
      'target_name': 'mdgpu_native',
      'sources': [
        'src/addon.cc',
        'src/common.cc',
        'src/fd.cc',
        'src/layout.cc',
        'src/mmap.cc',
        'src/poller.cc',
        'src/process.cc',
        'src/sock.cc',
        'src/systemd.cc',
      ],
      # node_addon_api_except: C++ exceptions on (NAPI_CPP_EXCEPTIONS, no -fno-exceptions).
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        # napi_detach_arraybuffer needs Node-API 7; 8 is what Node 20 defaults to.
        'NAPI_VERSION=8',
        # As<T>() checks the type (a fatal error otherwise silently miscasts);
        # every argument is checked with Is*() first, so it never fires on user input.
        'NODE_ADDON_API_ENABLE_TYPE_CHECK_ON_AS',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        '_GNU_SOURCE',
      ],
      'cflags_cc': [ '-Wall', '-Wextra', '-Wno-missing-field-initializers' ],
    },
  ],
}
