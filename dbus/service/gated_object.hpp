#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "service/authorization.hpp"

namespace tunlab::bus {

// What every object of the service shares: who may change things, and the count of signals
// sent (the daemon paces what it publishes by it).
struct ObjectPolicy {
    const Authorizer& authorizer;
    size_t& signals_sent;
};

// An object whose methods, all but the few named as reading, check their caller before
// anything else: before sdbus-c++ turns the call's arguments into C++ values. A refused
// caller costs the message sd-bus has read, nothing more; checked in the method body, a
// caller the bus policy let through (a looser local policy than ours) could make tunlabd
// build a map of two million variants out of one 32 MiB call before being refused.
//
// It wraps the object sdbus-c++ creates and hands every registration and emission on to it;
// only the method callbacks it registers are wrapped, and the signals it sends are counted.
class GatedObject final : public sdbus::IObject {
  public:
    GatedObject(std::unique_ptr<sdbus::IObject> object, const ObjectPolicy& policy,
                std::set<std::string> reading_methods);

    using sdbus::IObject::emitSignal;
    using sdbus::IObject::registerMethod;
    using sdbus::IObject::registerProperty;
    using sdbus::IObject::registerSignal;
    using sdbus::IObject::setInterfaceFlags;

    void registerMethod(const std::string& interfaceName, std::string methodName,
                        std::string inputSignature, std::string outputSignature,
                        sdbus::method_callback methodCallback, sdbus::Flags flags) override;
    void registerMethod(const std::string& interfaceName, std::string methodName,
                        std::string inputSignature, const std::vector<std::string>& inputNames,
                        std::string outputSignature, const std::vector<std::string>& outputNames,
                        sdbus::method_callback methodCallback, sdbus::Flags flags) override;
    void registerSignal(const std::string& interfaceName, std::string signalName,
                        std::string signature, sdbus::Flags flags) override;
    void registerSignal(const std::string& interfaceName, std::string signalName,
                        std::string signature, const std::vector<std::string>& paramNames,
                        sdbus::Flags flags) override;
    void registerProperty(const std::string& interfaceName, std::string propertyName,
                          std::string signature, sdbus::property_get_callback getCallback,
                          sdbus::Flags flags) override;
    void registerProperty(const std::string& interfaceName, std::string propertyName,
                          std::string signature, sdbus::property_get_callback getCallback,
                          sdbus::property_set_callback setCallback, sdbus::Flags flags) override;
    void setInterfaceFlags(const std::string& interfaceName, sdbus::Flags flags) override;
    void finishRegistration() override;
    void unregister() override;
    sdbus::Signal createSignal(const std::string& interfaceName,
                               const std::string& signalName) override;
    void emitSignal(const sdbus::Signal& message) override;
    void emitPropertiesChangedSignal(const std::string& interfaceName,
                                     const std::vector<std::string>& propNames) override;
    void emitPropertiesChangedSignal(const std::string& interfaceName) override;
    void emitInterfacesAddedSignal() override;
    void emitInterfacesAddedSignal(const std::vector<std::string>& interfaces) override;
    void emitInterfacesRemovedSignal() override;
    void emitInterfacesRemovedSignal(const std::vector<std::string>& interfaces) override;
    void addObjectManager() override;
    void removeObjectManager() override;
    bool hasObjectManager() const override;
    sdbus::IConnection& getConnection() const override;
    const std::string& getObjectPath() const override;
    const sdbus::Message* getCurrentlyProcessedMessage() const override;

  private:
    sdbus::method_callback gate(const std::string& methodName, sdbus::method_callback callback);

    std::unique_ptr<sdbus::IObject> object_;
    ObjectPolicy policy_;
    std::set<std::string> reading_methods_;
};

// sdbus::AdaptorInterfaces with a GatedObject under the generated interfaces.
class GatedObjectHolder {
  protected:
    GatedObjectHolder(sdbus::IConnection& connection, std::string object_path,
                      const ObjectPolicy& policy, std::set<std::string> reading_methods)
        : object_(sdbus::createObject(connection, std::move(object_path)), policy,
                  std::move(reading_methods)) {}
    sdbus::IObject& getObject() { return object_; }
    const sdbus::IObject& getObject() const { return object_; }

  private:
    GatedObject object_;
};

template <typename... Interfaces>
class GatedAdaptorInterfaces : protected GatedObjectHolder, public Interfaces... {
  public:
    // `reading_methods`: the methods anyone may call (the others change something).
    GatedAdaptorInterfaces(sdbus::IConnection& connection, std::string object_path,
                           const ObjectPolicy& policy, std::set<std::string> reading_methods = {})
        : GatedObjectHolder(connection, std::move(object_path), policy, std::move(reading_methods)),
          Interfaces(getObject())... {}
    GatedAdaptorInterfaces(const GatedAdaptorInterfaces&) = delete;
    GatedAdaptorInterfaces& operator=(const GatedAdaptorInterfaces&) = delete;

    void registerAdaptor() { getObject().finishRegistration(); }
    void unregisterAdaptor() { getObject().unregister(); }
    using GatedObjectHolder::getObject;

  protected:
    ~GatedAdaptorInterfaces() = default;
};

}  // namespace tunlab::bus
