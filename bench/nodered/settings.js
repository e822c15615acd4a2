// Headless Node-RED for bench/peer.py: no editor, no HTTP endpoints, no network, no palette installs.
// The flow file and the user directory are given on the command line by the script (a temp dir).
module.exports = {
    flowFilePretty: false,
    credentialSecret: false,
    uiHost: "127.0.0.1",
    uiPort: 0,
    httpAdminRoot: false,
    httpNodeRoot: false,
    httpStatic: false,
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    telemetry: { enabled: false, updateNotification: false },
    externalModules: {
        autoInstall: false,
        palette: { allowInstall: false, allowUpdate: false, allowUpload: false },
        modules: { allowInstall: false },
    },
    functionExternalModules: false,
    editorTheme: { projects: { enabled: false } },
    logging: { console: { level: "info", metrics: false, audit: false } },
    exportGlobalContextKeys: false,
};
