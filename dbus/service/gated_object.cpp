#include "service/gated_object.hpp"

#include "service/errors.hpp"

namespace tunlab::bus {

GatedObject::GatedObject(std::unique_ptr<sdbus::IObject> object, const ObjectPolicy& policy,
                         std::set<std::string> reading_methods)
    : object_(std::move(object)), policy_(policy), reading_methods_(std::move(reading_methods)) {}

sdbus::method_callback GatedObject::gate(const std::string& methodName,
                                         sdbus::method_callback callback) {
    if (reading_methods_.contains(methodName)) {
        return callback;
    }
    return
        [&authorizer = policy_.authorizer, callback = std::move(callback)](sdbus::MethodCall call) {
            guarded([&] { authorizer.require_change_permission(call); });
            callback(std::move(call));
        };
}

void GatedObject::registerMethod(const std::string& interfaceName, std::string methodName,
                                 std::string inputSignature, std::string outputSignature,
                                 sdbus::method_callback methodCallback, sdbus::Flags flags) {
    auto gated = gate(methodName, std::move(methodCallback));
    object_->registerMethod(interfaceName, std::move(methodName), std::move(inputSignature),
                            std::move(outputSignature), std::move(gated), flags);
}

void GatedObject::registerMethod(const std::string& interfaceName, std::string methodName,
                                 std::string inputSignature,
                                 const std::vector<std::string>& inputNames,
                                 std::string outputSignature,
                                 const std::vector<std::string>& outputNames,
                                 sdbus::method_callback methodCallback, sdbus::Flags flags) {
    auto gated = gate(methodName, std::move(methodCallback));
    object_->registerMethod(interfaceName, std::move(methodName), std::move(inputSignature),
                            inputNames, std::move(outputSignature), outputNames, std::move(gated),
                            flags);
}

void GatedObject::registerSignal(const std::string& interfaceName, std::string signalName,
                                 std::string signature, sdbus::Flags flags) {
    object_->registerSignal(interfaceName, std::move(signalName), std::move(signature), flags);
}

void GatedObject::registerSignal(const std::string& interfaceName, std::string signalName,
                                 std::string signature, const std::vector<std::string>& paramNames,
                                 sdbus::Flags flags) {
    object_->registerSignal(interfaceName, std::move(signalName), std::move(signature), paramNames,
                            flags);
}

void GatedObject::registerProperty(const std::string& interfaceName, std::string propertyName,
                                   std::string signature, sdbus::property_get_callback getCallback,
                                   sdbus::Flags flags) {
    object_->registerProperty(interfaceName, std::move(propertyName), std::move(signature),
                              std::move(getCallback), flags);
}

void GatedObject::registerProperty(const std::string& interfaceName, std::string propertyName,
                                   std::string signature, sdbus::property_get_callback getCallback,
                                   sdbus::property_set_callback setCallback, sdbus::Flags flags) {
    object_->registerProperty(interfaceName, std::move(propertyName), std::move(signature),
                              std::move(getCallback), std::move(setCallback), flags);
}

void GatedObject::setInterfaceFlags(const std::string& interfaceName, sdbus::Flags flags) {
    object_->setInterfaceFlags(interfaceName, flags);
}

void GatedObject::finishRegistration() {
    object_->finishRegistration();
}

void GatedObject::unregister() {
    object_->unregister();
}

sdbus::Signal GatedObject::createSignal(const std::string& interfaceName,
                                        const std::string& signalName) {
    return object_->createSignal(interfaceName, signalName);
}

void GatedObject::emitSignal(const sdbus::Signal& message) {
    object_->emitSignal(message);
    ++policy_.signals_sent;
}

void GatedObject::emitPropertiesChangedSignal(const std::string& interfaceName,
                                              const std::vector<std::string>& propNames) {
    object_->emitPropertiesChangedSignal(interfaceName, propNames);
    ++policy_.signals_sent;
}

void GatedObject::emitPropertiesChangedSignal(const std::string& interfaceName) {
    object_->emitPropertiesChangedSignal(interfaceName);
    ++policy_.signals_sent;
}

void GatedObject::emitInterfacesAddedSignal() {
    object_->emitInterfacesAddedSignal();
}

void GatedObject::emitInterfacesAddedSignal(const std::vector<std::string>& interfaces) {
    object_->emitInterfacesAddedSignal(interfaces);
}

void GatedObject::emitInterfacesRemovedSignal() {
    object_->emitInterfacesRemovedSignal();
}

void GatedObject::emitInterfacesRemovedSignal(const std::vector<std::string>& interfaces) {
    object_->emitInterfacesRemovedSignal(interfaces);
}

void GatedObject::addObjectManager() {
    object_->addObjectManager();
}

void GatedObject::removeObjectManager() {
    object_->removeObjectManager();
}

bool GatedObject::hasObjectManager() const {
    return object_->hasObjectManager();
}

sdbus::IConnection& GatedObject::getConnection() const {
    return object_->getConnection();
}

const std::string& GatedObject::getObjectPath() const {
    return object_->getObjectPath();
}

const sdbus::Message* GatedObject::getCurrentlyProcessedMessage() const {
    return object_->getCurrentlyProcessedMessage();
}

}  // namespace tunlab::bus
